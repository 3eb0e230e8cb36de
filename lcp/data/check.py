"""`lcp data check`: the gate before training; reads an image set and modifies nothing.

Two modes. A synthesised set (--degradation fog|rain|underwater, or the sidecar's, or the
file names' marker) is checked against its clean set (--clean), pair by pair, as below. A
real low-quality set (--degradation none, or neither a sidecar nor a marker in the names and
no --clean) has nothing to pair with: its images (all of --lowq, decodable) and annotations
(looked up in --lowq only) are checked alone.

Pairing rule: a low-quality image `<clean stem>_<marker>_<key>_<value>....jpg` (marker
foggy / rain / underwater, cut at its last occurrence) pairs with the one clean image
`<clean stem>.<jpg|jpeg|png>`. Checked per pair: both files complete and decodable, same
size, the same scene (band-pass correlation of the grey images), the sidecar (if
OUT_DIR/synthesis.json exists) names this clean image as the source, and the degradation
is present and, against the sidecar's expected values, in range. Per annotation file:
every image exists and decodes, its recorded size is right, boxes have positive area and lie
inside the image, category ids exist, names match --classes, ids are unique. Over all
annotation files: every category has at least one box; in --degradation none mode, every
image of --lowq is listed in some annotation file (a warning).

Objects: the sidecar records, per synthesised image, the depth source (disparity, depth map
or the ground-plane fallback) and the visibility of each annotated box (the share of the
clean image the degradation leaves over it; fog: the mean transmission). A box below
--erased-below is erased (a warning per image); more than --max-erased-share of a variant's
boxes erased is an error. Images synthesised with the fallback depth are named (a warning
per set), and so is each of them the fallback mostly whitened (more than half its pixels erased).

Output: a short summary on stdout, the full report as json with --report (atomically),
exit status 1 with the reasons when any error is found, 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from lcp.data.coco import load_coco
from lcp.data.convert.common import positive_int
from lcp.data.degradations import DEGRADATIONS, split_lowq_stem
from lcp.data.degradations.base import ERASED_BELOW, WHITENED_IMAGE_SHARE
from lcp.data.images import inspect_image_file, list_images, to_float
from lcp.data.synth import SIDECAR_NAME
from lcp.errors import LCPError
from lcp.io import read_json, write_json
from lcp.progress import map_with_progress

HELP = ("check a low-quality set and its annotations, a synthesised one against its clean set "
        "(the gate before training)")
NONE = "none"  # --degradation of a real low-quality set: annotations and images alone

# A low-quality image shows the same scene as its clean source when their edge strengths
# correlate locally at least this much. Measured on demo-scene images (64-128 px): unrelated
# pairs reach 0.17, fog/rain/underwater pairs stay above 0.35.
MIN_SCENE_CORRELATION = 0.25
SCENE_COMPARISON_SIZE = 512
BOX_SLACK_PX = 0.5
EXAMPLES_SHOWN = 5
# Default of --max-erased-share: above it, a variant hides too many objects to train on.
MAX_ERASED_SHARE = 0.1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lowq", required=True, help="folder of low-quality images")
    parser.add_argument("--clean", help="folder of clean images (needed for a synthesised set)")
    parser.add_argument("--ann", nargs="+", default=[], metavar="COCO.json",
                        help="annotation files to check (images looked up in --lowq, then --clean)")
    parser.add_argument("--classes", help="comma-separated class names the configs use, e.g. circle,square,triangle")
    parser.add_argument("--degradation", choices=[*sorted(DEGRADATIONS), NONE],
                        help="expected degradation (default: the sidecar's, else the file names' marker); "
                             "none: a real low-quality set, its annotations and images checked alone")
    parser.add_argument("--erased-below", type=float, default=ERASED_BELOW,
                        help=f"a box whose visibility (the share of it the degradation leaves) is below this "
                             f"is erased (default {ERASED_BELOW})")
    parser.add_argument("--max-erased-share", type=float, default=MAX_ERASED_SHARE,
                        help=f"fail when more than this share of a variant's boxes is erased "
                             f"(default {MAX_ERASED_SHARE})")
    parser.add_argument("--report", help="write the machine-readable report here (json)")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                        help="processes (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    for option, value in (("--erased-below", args.erased_below), ("--max-erased-share", args.max_erased_share)):
        if not 0 <= value <= 1:
            raise LCPError(f"{option}: a share in [0, 1], got {value}")
    report = check_set(Path(args.lowq), Path(args.clean) if args.clean else None, [Path(a) for a in args.ann],
                       classes=classes, degradation=args.degradation, workers=args.workers,
                       progress=not args.no_progress, erased_below=args.erased_below,
                       max_erased_share=args.max_erased_share)
    if args.report:
        write_json(args.report, report)
    print(format_summary(report))
    return 0 if report["ok"] else 1


class Findings:
    """Errors (fail the gate) and warnings, grouped by reason."""

    def __init__(self) -> None:
        self.errors: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.warnings: dict[str, list[dict[str, str]]] = defaultdict(list)

    def error(self, reason: str, file: str | Path, detail: str) -> None:
        self.errors[reason].append({"file": str(file), "detail": detail})

    def warning(self, reason: str, file: str | Path, detail: str) -> None:
        self.warnings[reason].append({"file": str(file), "detail": detail})

    @staticmethod
    def grouped(found: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
        return {reason: {"count": len(items), "items": items} for reason, items in sorted(found.items())}


def check_set(lowq_dir: Path, clean_dir: Path | None, annotation_files: list[Path],
              classes: list[str] | None = None, degradation: str | None = None, workers: int = 1,
              progress: bool = True, erased_below: float = ERASED_BELOW,
              max_erased_share: float = MAX_ERASED_SHARE) -> dict[str, Any]:
    """Run every check; return the report (its 'ok' says whether the gate passes)."""
    lowq_images = list_images(lowq_dir)
    annotations = [(path, load_coco(path)) for path in annotation_files]  # bad json: LCPError now
    findings = Findings()
    sidecar = _read_sidecar(lowq_dir) if degradation != NONE else None
    kind = _degradation_kind(degradation, sidecar, lowq_images, findings, lowq_dir, clean_dir)
    records = sidecar.get("images", {}) if sidecar else {}

    if kind is None:  # nothing synthesised: decode every image, pair none
        clean_dir, clean_images, pairs = None, [], []
        measured = map_with_progress(inspect_size, [str(p) for p in lowq_images], workers, "check", "image",
                                     show=progress)
        for result in measured:
            if result["problem"] is not None:
                findings.error(result["problem"][0], result["lowq"], result["problem"][1])
        sizes = {Path(r["lowq"]): r["lowq_size"] for r in measured}
        measured, objects = [], {}
    else:
        clean_images = list_images(clean_dir)
        pairs = _pair(lowq_images, clean_images, kind, records, findings)
        measured = _check_pairs(pairs, kind, records, findings, workers, progress)
        # Sizes of the files already decoded (None: broken, already reported), for the annotations.
        sizes = {Path(r[role]): r[f"{role}_size"] for r in measured for role in ("lowq", "clean")}
        objects = _check_objects(lowq_dir, lowq_images, kind, records, bool(annotations), erased_below,
                                 max_erased_share, findings)
    folders = [lowq_dir] if clean_dir is None else [lowq_dir, clean_dir]
    counts = {"lowq_images": len(lowq_images), "clean_images": len(clean_images), "pairs": len(pairs),
              "annotation_files": len(annotations), "annotations": 0, "annotated_images": 0}
    for path, coco in annotations:
        _check_annotations(path, coco, folders, classes, sizes, findings)
        counts["annotations"] += len(coco["annotations"])
        counts["annotated_images"] += len(coco["images"])
    if annotations:
        _check_every_class_has_boxes(annotations, classes, findings)
        if kind is None:
            listed = {image["file_name"] for _, coco in annotations for image in coco["images"]}
            for path in lowq_images:
                if path.name not in listed:
                    findings.warning("image_not_annotated", path, "in no annotation file")

    images = {Path(r["lowq"]).name: {"clean": Path(r["clean"]).name, "measured": r.get("measured")}
              for r in measured}
    for name, entry in objects.get("images", {}).items():
        images.setdefault(name, {}).update(entry)
    return {
        "ok": not findings.errors,
        "mode": "annotations-and-images" if kind is None else "synthesised-pairs",
        "lowq_dir": str(lowq_dir),
        "clean_dir": None if clean_dir is None else str(clean_dir),
        "annotation_files": [str(p) for p in annotation_files],
        "classes": classes,
        "degradation": kind,
        "statistic": DEGRADATIONS[kind].statistic if kind else None,
        "sidecar": str(lowq_dir / SIDECAR_NAME) if sidecar else None,
        "counts": counts,
        "errors": Findings.grouped(findings.errors),
        "warnings": Findings.grouped(findings.warnings),
        "degradation_summary": _summarise(measured, kind),
        "depth_sources": objects.get("depth_sources", {}),
        "box_visibility": objects.get("box_visibility", {}),
        "images": images,
    }


def _read_sidecar(lowq_dir: Path) -> dict | None:
    path = lowq_dir / SIDECAR_NAME
    if not path.exists():
        return None
    sidecar = read_json(path)
    if not isinstance(sidecar, dict) or not isinstance(sidecar.get("images"), dict):
        raise LCPError(f"{path}: not a synthesis sidecar (no 'images' object)")
    return sidecar


def _degradation_kind(requested: str | None, sidecar: dict | None, lowq_images: list[Path],
                      findings: Findings, lowq_dir: Path, clean_dir: Path | None) -> str | None:
    """The degradation to check, or None: a real low-quality set, checked without pairing."""
    if requested == NONE:
        return None
    recorded = sidecar.get("degradation") if sidecar else None
    if requested and recorded and requested != recorded:
        findings.error("degradation_mismatch", lowq_dir / SIDECAR_NAME,
                       f"the sidecar says {recorded}, --degradation says {requested}")
    kind = requested or recorded
    if kind is None:
        markers = {cls.marker: name for name, cls in DEGRADATIONS.items()}
        found = {markers[split[1]] for p in lowq_images
                 if (split := split_lowq_stem(p.stem, list(markers))) is not None}
        if not found and clean_dir is None:
            return None
        if len(found) != 1:
            raise LCPError(f"{lowq_dir}: cannot tell the degradation from the file names "
                           f"(found {sorted(found) or 'none'}); pass --degradation "
                           f"({'|'.join(sorted(DEGRADATIONS))}, or none for a real low-quality set)")
        kind = found.pop()
    if kind not in DEGRADATIONS:
        raise LCPError(f"{lowq_dir / SIDECAR_NAME}: unknown degradation {kind!r}")
    if clean_dir is None:
        raise LCPError(f"{lowq_dir}: a {kind} set is checked against its clean images; pass --clean, "
                       "or --degradation none to check its annotations and images alone")
    return kind


def _pair(lowq_images: list[Path], clean_images: list[Path], kind: str, records: dict,
          findings: Findings) -> list[tuple[Path, Path, str]]:
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
        if len(candidates) > 1:
            findings.error("ambiguous_pair", lowq, "several clean images: " + ", ".join(p.name for p in candidates))
            continue
        clean = candidates[0]
        if record is not None and record.get("source") != clean.name:
            findings.error("mispaired", lowq, f"{SIDECAR_NAME} says it was made from {record.get('source')}, "
                                              f"its name pairs it with {clean.name}")
            continue
        used.add(clean)
        label = "_".join(f"{k}_{v}" for k, v in params.items())
        pairs.append((lowq, clean, label))
    for clean in clean_images:
        if clean not in used:
            findings.warning("clean_without_lowq", clean, "no low-quality image pairs with it")
    return pairs


def inspect_size(path: str) -> dict[str, Any]:
    """Decode one image: its [width, height], or the problem (code, description)."""
    image, problem = inspect_image_file(path)
    return {"lowq": path, "lowq_size": None if image is None else [image.shape[1], image.shape[0]],
            "problem": problem}


def _check_pairs(pairs, kind, records, findings, workers, progress) -> list[dict[str, Any]]:
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
        result["problems"].append(("size_mismatch", lowq_path,
                                   f"{lowq.shape[1]}x{lowq.shape[0]}, its clean image {Path(clean_path).name} is "
                                   f"{clean.shape[1]}x{clean.shape[0]}"))
        return result
    lowq_f, clean_f = to_float(lowq), to_float(clean)
    degradation = DEGRADATIONS[kind]
    correlation = scene_correlation(degradation.structure(clean_f, record), degradation.structure(lowq_f, record))
    result["scene_correlation"] = round(correlation, 4)
    if correlation < MIN_SCENE_CORRELATION:
        result["problems"].append(("content_mismatch", lowq_path,
                                   f"does not show the scene of {Path(clean_path).name} (edge correlation "
                                   f"{correlation:.2f} < {MIN_SCENE_CORRELATION}): swapped or misnamed, or the "
                                   "degradation hid most of it (a depth map far from the scene's geometry?)"))
        return result
    measured = degradation.measure(clean_f, lowq_f, record)
    result["measured"] = measured
    for reason, detail in degradation.judge(measured, record):
        result["problems"].append((reason, lowq_path, detail))
    return result


def _check_objects(lowq_dir: Path, lowq_images: list[Path], kind: str, records: dict, annotated: bool,
                   erased_below: float, max_erased_share: float, findings: Findings) -> dict[str, Any]:
    """Depth sources and box visibility, from the sidecar's records of the images on disk."""
    sidecar = lowq_dir / SIDECAR_NAME
    marker = DEGRADATIONS[kind].marker
    depth_sources: dict[str, int] = defaultdict(int)
    variants: dict[str, list[float]] = defaultdict(list)
    images, fallback, unknown = {}, [], 0
    for path in lowq_images:
        record = records.get(path.name)
        if not isinstance(record, dict):
            continue
        entry = images[path.name] = {}
        depth = record.get("depth") or {}
        if "source" in depth:
            entry["depth_source"] = depth["source"]
            depth_sources[depth["source"]] += 1
            whitened = (record.get("visibility") or {}).get("whitened_share")
            if depth.get("fallback"):
                fallback.append(path)
                if whitened is not None and whitened > WHITENED_IMAGE_SHARE:
                    findings.warning("fallback_depth_whitens", path,
                                     f"{whitened:.0%} of its pixels erased (visibility < {ERASED_BELOW}) by the "
                                     "fallback ground-plane depth: the plane does not fit this scene")
        boxes = record.get("boxes")
        if not isinstance(boxes, list):
            unknown += 1
            continue
        split = split_lowq_stem(path.stem, [marker])
        label = "_".join(f"{k}_{v}" for k, v in split[2].items()) if split else ""
        visible = [b["visibility"] for b in boxes if isinstance(b, dict) and b.get("visibility") is not None]
        variants[label].extend(visible)
        erased = [b for b in boxes if isinstance(b, dict) and b.get("visibility") is not None
                  and b["visibility"] < erased_below]
        entry["boxes"], entry["boxes_erased"] = len(boxes), len(erased)
        if erased:
            shown = ", ".join(f"{b['bbox']} {b['visibility']:.2f}" for b in erased[:3])
            findings.warning("boxes_erased", path, f"{len(erased)} of {len(boxes)} boxes keep less than "
                                                   f"{erased_below:g} of their contrast: {shown}")
    if fallback:
        findings.warning("fallback_depth", sidecar,
                         f"{len(fallback)} of {len(images)} images were degraded with the fallback depth (a "
                         "road-scene ground plane), not their own; it fits road scenes seen from a car only")
    if annotated and unknown:
        findings.warning("box_visibility_unknown", sidecar if records else lowq_dir,
                         f"{unknown if records else len(lowq_images)} images have no box visibility recorded "
                         "(synthesised without --ann, or by an older lcp): erased boxes are not checked")
    summary = {}
    for label, values in sorted(variants.items()):
        array = np.array(values, dtype=np.float64)
        erased = int((array < erased_below).sum())
        share = erased / len(array) if len(array) else 0.0
        summary[label] = {"boxes": len(array), "erased": erased, "erased_share": round(share, 4),
                          "median": round(float(np.median(array)), 4) if len(array) else None}
        if share > max_erased_share:
            sources = ", ".join(f"{n} {source}" for source, n in sorted(depth_sources.items()))
            findings.error("boxes_erased", sidecar,
                           f"[{label}] {erased} of {len(array)} boxes ({share:.0%}) keep less than "
                           f"{erased_below:g} of their contrast, more than --max-erased-share "
                           f"{max_erased_share:g} (depth: {sources or 'not recorded'})")
    return {"images": images, "depth_sources": dict(sorted(depth_sources.items())),
            "box_visibility": {"erased_below": erased_below, "max_erased_share": max_erased_share,
                               "by_variant": summary} if summary else {}}


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
        size = (round(clean.shape[1] * factor), round(clean.shape[0] * factor))
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
    spread = np.sqrt(np.maximum((local_mean(a * a) - mean_a ** 2) * (local_mean(b * b) - mean_b ** 2), 0.0))
    total = float(spread.sum())
    return float(covariance.sum() / total) if total > 1e-12 else 0.0


def _check_annotations(path: Path, coco: dict, folders: list[Path], classes: list[str] | None,
                       sizes: dict[Path, list[int]], findings: Findings) -> None:
    categories = {c["id"]: c["name"] for c in coco["categories"]}
    if classes is not None:
        names = list(categories.values())
        for cid, name in categories.items():
            if name not in classes:
                findings.error("unknown_category", path, f"category {name!r} (id {cid}) is not one of the classes "
                                                         f"{','.join(classes)}")
        for name in classes:
            if name not in names:
                findings.error("category_mismatch", path, f"class {name!r} has no category in this file")
    for key, reason in (("images", "duplicate_image_id"), ("annotations", "duplicate_annotation_id"),
                        ("categories", "duplicate_category_id")):
        seen = set()
        for entry in coco[key]:
            if entry["id"] in seen:
                findings.error(reason, path, f"{key[:-1]} id {entry['id']} appears more than once")
            seen.add(entry["id"])
    images = {image["id"]: image for image in coco["images"]}
    file_sizes: dict[Any, list[int] | None] = {}  # image id -> [width, height] of the file
    seen_names = set()
    for image in coco["images"]:
        name = image["file_name"]
        if name in seen_names:
            findings.error("duplicate_file_name", path, f"{name} is listed twice")
        seen_names.add(name)
        size = file_sizes[image["id"]] = _image_size(name, folders, sizes, findings, path)
        recorded = [image.get("width"), image.get("height")]
        if size and None not in recorded and recorded != size:
            findings.error("size_mismatch", path, f"{name}: recorded {recorded[0]}x{recorded[1]}, "
                                                  f"the file is {size[0]}x{size[1]}")
    annotated = set()
    for ann in coco["annotations"]:
        where = f"annotation {ann['id']}"
        if ann["category_id"] not in categories:
            findings.error("unknown_category", path, f"{where}: category id {ann['category_id']} is not in categories")
        image = images.get(ann["image_id"])
        if image is None:
            findings.error("orphan_annotation", path, f"{where}: image id {ann['image_id']} is not in images")
            continue
        annotated.add(ann["image_id"])
        _check_box(ann["bbox"], image["file_name"], file_sizes.get(ann["image_id"]), where, path, findings)
    for image in coco["images"]:
        if image["id"] not in annotated:
            findings.warning("images_without_annotations", path, f"{image['file_name']} has no boxes")


def _check_every_class_has_boxes(annotations: list[tuple[Path, dict]], classes: list[str] | None,
                                 findings: Findings) -> None:
    """A category without a box in any file is an error: the detector never sees it and the
    evaluation scores it without ground truth. One without a box in a single file is a
    warning. With --classes only those are looked at (other categories, and classes without
    a category, are errors already)."""
    boxes: dict[str, int] = defaultdict(int)
    for path, coco in annotations:
        names = {c["id"]: c["name"] for c in coco["categories"]}
        in_file: dict[str, int] = defaultdict(int)
        for ann in coco["annotations"]:
            in_file[names.get(ann["category_id"])] += 1
        for name in names.values():
            if classes is not None and name not in classes:
                continue
            boxes[name] += in_file[name]
            if not in_file[name]:
                findings.warning("class_without_boxes_in_file", path, f"class {name!r} has no box in this file")
    for name, count in boxes.items():
        if not count:
            findings.error("class_without_boxes", ", ".join(str(path) for path, _ in annotations),
                           f"class {name!r} has no box in any annotation file")


def _image_size(name: str, folders: list[Path], sizes: dict[Path, list[int]],
                findings: Findings, source: Path) -> list[int] | None:
    for folder in folders:
        candidate = folder / name
        if candidate in sizes:
            return sizes[candidate]
        if candidate.is_file():
            image, problem = inspect_image_file(candidate)
            if problem is not None:
                findings.error(problem[0], candidate, f"{problem[1]} (referenced by {source})")
                sizes[candidate] = None
                return None
            sizes[candidate] = [image.shape[1], image.shape[0]]
            return sizes[candidate]
    findings.error("missing_image", source, f"{name} is not in " + " nor ".join(str(f) for f in folders))
    return None


def _check_box(bbox: Any, name: str, size: list[int] | None, where: str, path: Path, findings: Findings) -> None:
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
        findings.error("invalid_box", path, f"{where}: bbox {bbox!r} is not [x, y, w, h]")
        return
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        findings.error("box_nonpositive_area", path, f"{where} on {name}: width {w}, height {h}")
        return
    if size and (x < -BOX_SLACK_PX or y < -BOX_SLACK_PX or x + w > size[0] + BOX_SLACK_PX
                 or y + h > size[1] + BOX_SLACK_PX):
        findings.error("box_outside_image", path,
                       f"{where} on {name}: [{x}, {y}, {w}, {h}] leaves the {size[0]}x{size[1]} image")


def _summarise(measured: list[dict[str, Any]], kind: str | None) -> dict[str, Any]:
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
        summary[variant] = {"images": len(values), "mean": round(float(array.mean()), 4),
                            "min": round(float(array.min()), 4), "max": round(float(array.max()), 4)}
    return {"statistic": statistic, "by_variant": summary}


def format_summary(report: dict[str, Any]) -> str:
    counts = report["counts"]
    if report["degradation"] is None:
        lines = [f"lcp data check (no degradation: annotations and images only): {counts['lowq_images']} images; "
                 f"{counts['annotation_files']} annotation files, {counts['annotations']} boxes"]
    else:
        lines = [f"lcp data check ({report['degradation']}): {counts['lowq_images']} low-quality, "
                 f"{counts['clean_images']} clean images, {counts['pairs']} pairs; "
                 f"{counts['annotation_files']} annotation files, {counts['annotations']} boxes"]
    summary = report["degradation_summary"]
    for variant, stats in summary.get("by_variant", {}).items():
        lines.append(f"  {summary['statistic']} [{variant}]: mean {stats['mean']:.3f}, "
                     f"min {stats['min']:.3f}, max {stats['max']:.3f} over {stats['images']} images")
    if report["depth_sources"]:
        lines.append("  depth: " + ", ".join(f"{n} images {source}" for source, n in report["depth_sources"].items()))
    visibility = report["box_visibility"]
    for variant, stats in visibility.get("by_variant", {}).items():
        lines.append(f"  box visibility [{variant}]: median {stats['median']:.3f}, {stats['erased']} of "
                     f"{stats['boxes']} boxes erased (< {visibility['erased_below']:g})")
    for title, found in (("warning", report["warnings"]), ("error", report["errors"])):
        for reason, group in found.items():
            lines.append(f"  {title} {reason} ({group['count']}):")
            for item in group["items"][:EXAMPLES_SHOWN]:
                lines.append(f"    {item['file']}: {item['detail']}")
            if group["count"] > EXAMPLES_SHOWN:
                lines.append(f"    ... {group['count'] - EXAMPLES_SHOWN} more")
    total = sum(group["count"] for group in report["errors"].values())
    lines.append("PASSED" if report["ok"] else f"FAILED: {total} error(s): " + ", ".join(report["errors"]))
    return "\n".join(lines)
