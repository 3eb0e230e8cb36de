"""The checks of a synthesised set, pair by pair: a low-quality image pairs with the clean image
it was made from (by name, and by the sidecar's record); both decode, have the same size and
show the same scene, and the degradation measured back is present and in range."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from lcp.data.check.findings import Findings
from lcp.data.degradations import DEGRADATIONS, split_lowq_stem
from lcp.data.images import inspect_image_file, to_float
from lcp.data.synth import SIDECAR_NAME
from lcp.progress import map_with_progress

# A low-quality image shows the same scene as its clean source when their edge strengths
# correlate locally at least this much. Measured on demo-scene images (64-128 px): unrelated
# pairs reach 0.17, fog/rain/underwater pairs stay above 0.35.
MIN_SCENE_CORRELATION = 0.25
SCENE_COMPARISON_SIZE = 512


def pair_images(
    lowq_images: list[Path], clean_images: list[Path], kind: str, records: dict, findings: Findings
) -> list[tuple[Path, Path, str]]:
    """(low-quality path, clean path, variant label) for every low-quality image that pairs."""
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in clean_images:
        by_stem[path.stem].append(path)
    marker = DEGRADATIONS[kind].marker
    pairs, used = [], set()
    for lowq in lowq_images:
        record = records.get(lowq.name)
        if records and record is None:
            findings.error("not_in_sidecar", lowq, f"{SIDECAR_NAME} has no entry for this image")
        split = split_lowq_stem(lowq.stem, [marker])
        if split is None:
            findings.error("unpaired_lowq", lowq, f"name has no '_{marker}_' part, so no clean image pairs with it")
            continue
        clean_stem, _, params = split
        candidates = by_stem.get(clean_stem, [])
        if not candidates:
            findings.error("unpaired_lowq", lowq, f"no clean image {clean_stem}.jpg/.png")
            continue
        used.update(candidates)  # named by this image's error if it does not pair, not as without one
        if len(candidates) > 1:
            findings.error("ambiguous_pair", lowq, "several clean images: " + ", ".join(p.name for p in candidates))
            continue
        clean = candidates[0]
        if record is not None and record.get("source") != clean.name:
            findings.error(
                "mispaired",
                lowq,
                f"{SIDECAR_NAME} says it was made from {record.get('source')}, its name pairs it with {clean.name}",
            )
            continue
        label = "_".join(f"{k}_{v}" for k, v in params.items())
        pairs.append((lowq, clean, label))
    for clean in clean_images:
        if clean not in used:
            findings.warning("clean_without_lowq", clean, "no low-quality image pairs with it")
    return pairs


def check_pairs(
    pairs: list[tuple[Path, Path, str]], kind: str, records: dict, findings: Findings, workers: int, progress: bool
) -> list[dict[str, Any]]:
    """`check_pair` over `pairs` in `workers` processes; its problems go to `findings` as errors."""
    tasks = [(str(lowq), str(clean), label, kind, records.get(lowq.name)) for lowq, clean, label in pairs]
    results = map_with_progress(check_pair, tasks, workers, "check", "pair", show=progress)
    for result in results:
        for reason, file, detail in result.pop("problems"):
            findings.error(reason, file, detail)
    return results


def check_pair(task: tuple[str, str, str, str, dict | None]) -> dict[str, Any]:
    """Decode, compare and measure one (low-quality, clean) pair; problems as (reason, file, detail)."""
    lowq_path, clean_path, label, kind, record = task
    result: dict[str, Any] = {"lowq": lowq_path, "clean": clean_path, "variant": label, "problems": []}
    images = {}
    for role, path in (("lowq", lowq_path), ("clean", clean_path)):
        image, problem = inspect_image_file(path)
        if problem is not None:
            result["problems"].append((problem[0], path, problem[1]))
            result[f"{role}_size"] = None
        else:
            images[role] = image
            result[f"{role}_size"] = [image.shape[1], image.shape[0]]
    if len(images) < 2:
        return result
    lowq, clean = images["lowq"], images["clean"]
    if lowq.shape != clean.shape:
        result["problems"].append(
            (
                "size_mismatch",
                lowq_path,
                f"{lowq.shape[1]}x{lowq.shape[0]}, its clean image {Path(clean_path).name} is "
                f"{clean.shape[1]}x{clean.shape[0]}",
            )
        )
        return result
    lowq_f, clean_f = to_float(lowq), to_float(clean)
    degradation = DEGRADATIONS[kind]
    correlation = scene_correlation(degradation.structure(clean_f, record), degradation.structure(lowq_f, record))
    result["scene_correlation"] = round(correlation, 4)
    if correlation < MIN_SCENE_CORRELATION:
        result["problems"].append(
            (
                "content_mismatch",
                lowq_path,
                f"does not show the scene of {Path(clean_path).name} (edge correlation "
                f"{correlation:.2f} < {MIN_SCENE_CORRELATION}): swapped or misnamed, or the "
                "degradation hid most of it (a depth map far from the scene's geometry?)",
            )
        )
        return result
    measured = degradation.measure(clean_f, lowq_f, record)
    result["measured"] = measured
    for reason, detail in degradation.judge(measured, record):
        result["problems"].append((reason, lowq_path, detail))
    return result


def scene_correlation(clean: np.ndarray, lowq: np.ndarray) -> float:
    """Local correlation of the two images' edge strength, pooled over the image.

    Edges are compared by strength, not sign: where the depth jumps (an object against the
    sky) fog can turn a dark-on-light edge into light-on-dark. Fog and colour casts also
    scale contrast differently across the image, so correlation is taken in small windows
    and pooled weighted by the windows' contrast: regions the fog erased weigh little, while
    an unrelated image correlates about zero everywhere.
    """
    import cv2

    longest = max(clean.shape[:2])
    if longest > SCENE_COMPARISON_SIZE:  # the scene's layout shows at this size; finer costs seconds
        factor = SCENE_COMPARISON_SIZE / longest
        size = (max(1, round(clean.shape[1] * factor)), max(1, round(clean.shape[0] * factor)))
        clean, lowq = (cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (clean, lowq))
    scale = max(clean.shape[:2]) / 256.0

    def edge_strength(image: np.ndarray) -> np.ndarray:
        smooth = cv2.GaussianBlur(image, (0, 0), 0.5 * scale + 0.5)
        gx, gy = cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
        return np.sqrt((gx * gx + gy * gy).sum(axis=2))

    a, b = edge_strength(clean), edge_strength(lowq)
    window = 4.0 * scale + 2.0

    def local_mean(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (0, 0), window)

    mean_a, mean_b = local_mean(a), local_mean(b)
    covariance = local_mean(a * b) - mean_a * mean_b
    spread = np.sqrt(np.maximum((local_mean(a * a) - mean_a**2) * (local_mean(b * b) - mean_b**2), 0.0))
    total = float(spread.sum())
    return float(covariance.sum() / total) if total > 1e-12 else 0.0


def summarise_degradation(measured: list[dict[str, Any]], kind: str | None) -> dict[str, Any]:
    if kind is None:
        return {}
    statistic = DEGRADATIONS[kind].statistic
    by_variant: dict[str, list[float]] = defaultdict(list)
    for result in measured:
        value = (result.get("measured") or {}).get(statistic)
        if value is not None:
            by_variant[result["variant"]].append(value)
    summary = {}
    for variant, values in sorted(by_variant.items()):
        array = np.array(values)
        summary[variant] = {
            "images": len(values),
            "mean": round(float(array.mean()), 4),
            "min": round(float(array.min()), 4),
            "max": round(float(array.max()), 4),
        }
    return {"statistic": statistic, "by_variant": summary}
