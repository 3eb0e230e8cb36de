"""`lcp data synth fog|rain|underwater`: synthesise a low-quality image set from clean images.

Output: OUT_DIR/<clean stem>_<marker>_<key>_<value>....jpg for each clean image (each one the
--ann files list, when given) and each parameter setting, plus OUT_DIR/synthesis.json (the
model, its parameters, the depth source and every image's own parameters and expected
measurements, read by `lcp data check`).
Per image the sidecar also names the depth source used (disparity, depth map or the
ground-plane fallback), the image's visibility (mean, and the share of erased pixels) and,
for every box of the --ann files on its clean image, the box's visibility: the mean share of
the clean image the degradation leaves over the box (fog: the transmission).
Each image draws its randomness from (seed, file name), so the output does not depend on
the number of workers or on the order the images are processed in.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lcp.data.coco import load_coco, rename_images
from lcp.data.degradations import Degradation
from lcp.data.degradations.base import ERASED_BELOW, WHITENED_IMAGE_SHARE
from lcp.data.depth import DepthSource
from lcp.data.images import JPEG_QUALITY, encode_jpeg, list_images, read_image, read_size, to_float, to_uint8
from lcp.errors import LCPError
from lcp.io import atomic_folder, atomic_path, check_folder_output, check_outside_sources, json_text, write_json
from lcp.progress import map_with_progress

SIDECAR_NAME = "synthesis.json"


def fallback_note(sidecar: dict[str, Any]) -> str | None:
    """One line when images were degraded with the ground-plane fallback depth, else None."""
    fallback = [r for r in sidecar["images"].values() if r.get("depth", {}).get("fallback")]
    if not fallback:
        return None
    whitened = sum(1 for r in fallback if r["visibility"]["whitened_share"] > WHITENED_IMAGE_SHARE)
    return (
        f"note: {len(fallback)} images used the fallback depth (a road-scene ground plane, no disparity or "
        f"depth map); {whitened} of them have more than {WHITENED_IMAGE_SHARE:.0%} of their pixels erased "
        "(pass --depth-dir, or --near/--far/--horizon that fit the scene)"
    )


def image_rng(seed: int, file_name: str) -> np.random.Generator:
    """The random stream of one image: a function of (seed, file name) only."""
    digest = hashlib.sha256(os.fsencode(file_name)).digest()  # a name need not be valid UTF-8
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


@dataclass
class _Job:
    degradation: Degradation
    depth: DepthSource
    out_dir: Path
    seed: int
    quality: int
    boxes: dict[str, list[list[float]]]  # clean file name -> its boxes in all --ann files


_JOB: _Job | None = None


def _init_worker(job: _Job) -> None:
    import cv2

    global _JOB
    _JOB = job
    cv2.setNumThreads(1)


def _synthesise_image(source: Path) -> list[tuple[str, dict[str, Any]]]:
    job = _JOB
    clean = to_float(read_image(source))
    height, width = clean.shape[:2]
    depth = job.depth.depth_for(source, height, width)
    results = []
    depth_source = job.depth.source_for(source)
    boxes = job.boxes.get(source.name)
    for variant in job.degradation.variants():
        degraded, visibility, record = job.degradation.synthesise(
            clean, depth, variant, image_rng(job.seed, source.name)
        )
        name = source.stem + job.degradation.suffix(variant) + ".jpg"
        (job.out_dir / name).write_bytes(encode_jpeg(to_uint8(degraded), job.quality))
        record = {
            "source": source.name,
            "params": variant,
            **record,
            "depth": depth_source,
            "visibility": {
                "mean": round(float(visibility.mean()), 4),
                "whitened_share": round(float((visibility < ERASED_BELOW).mean()), 4),
            },
        }
        if boxes is not None:
            record["boxes"] = [{"bbox": bbox, "visibility": box_visibility(visibility, bbox)} for bbox in boxes]
        results.append((name, record))
    return results


def box_visibility(visibility: np.ndarray, bbox: list[float]) -> float | None:
    """Mean visibility over the pixels a [x, y, w, h] box covers; None if it covers none."""
    x, y, w, h = bbox
    height, width = visibility.shape
    x0, y0 = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
    x1, y1 = min(width, int(np.ceil(x + w))), min(height, int(np.ceil(y + h)))
    if x1 <= x0 or y1 <= y0:
        return None
    return round(float(visibility[y0:y1, x0:x1].mean()), 4)


def boxes_by_image(cocos: list[dict]) -> dict[str, list[list[float]]]:
    """Clean file name -> its well-formed boxes (bad ones are the check's to report)."""
    boxes: dict[str, list[list[float]]] = {}
    for coco in cocos:
        names = {image["id"]: image["file_name"] for image in coco["images"]}
        for name in names.values():
            boxes.setdefault(name, [])
        for ann in coco["annotations"]:
            bbox = ann.get("bbox")
            if (
                ann.get("image_id") in names
                and isinstance(bbox, list)
                and len(bbox) == 4
                and all(isinstance(v, (int, float)) for v in bbox)
                and bbox[2] > 0
                and bbox[3] > 0
            ):
                boxes[names[ann["image_id"]]].append(bbox)
    return boxes


def check_recorded_sizes(ann_file: str, coco: dict, src: Path) -> None:
    """An LCPError when an annotated image reads (as OpenCV and mmdet read it, EXIF orientation
    applied) at another size than its annotation records: its boxes would be carried over to a
    synthesised image they do not fit (a phone photo turned a quarter, an image resized after
    labelling). Its header is read, nothing decoded."""
    for image in coco["images"]:
        recorded = (image.get("width"), image.get("height"))
        path = src / image["file_name"]
        if not all(isinstance(side, int) and side > 0 for side in recorded) or not path.is_file():
            continue
        size = read_size(path, expected=recorded)
        if isinstance(size, tuple) and size != recorded:
            raise LCPError(
                f"{path}: {ann_file} records {recorded[0]}x{recorded[1]}, the image reads as {size[0]}x{size[1]} "
                "(EXIF orientation applied, as mmdet reads it), so its boxes would not fit the synthesised image; "
                "convert the set first (lcp data convert coco), which writes the images as they are read"
            )


def output_names(degradation: Degradation, sources: list[Path]) -> dict[str, list[str]]:
    """Source file name -> the names of its synthesised images (one per variant)."""
    names: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for source in sources:
        outputs = [source.stem + degradation.suffix(variant) + ".jpg" for variant in degradation.variants()]
        for output in outputs:
            if output in seen:
                raise LCPError(
                    f"{source}: would be written as {output}, as {seen[output]} already is "
                    "(two sources with the same stem, or two identical parameter settings)"
                )
            seen[output] = source.name
        names[source.name] = outputs
    return names


def synthesise_folder(
    degradation: Degradation,
    src: Path,
    out: Path,
    depth: DepthSource,
    seed: int = 0,
    workers: int = 1,
    annotations: list[tuple[str, str]] = (),
    overwrite: bool = False,
    quality: int = JPEG_QUALITY,
    progress: bool = True,
    depth_dirs: list[str | None] = (),
) -> dict[str, Any]:
    """Write the synthesised folder (atomically) and the rewritten annotations; return the sidecar.

    With annotation files, the images they list are synthesised (a robustness test set drawn
    from a clean folder that holds the train images too took them all: seven times the test
    split's images on Cityscapes); without, every image of `src`. No output may be, contain or
    lie inside `src`, an --ann file or one of `depth_dirs`.
    """
    if seed < 0:
        raise LCPError(f"--seed: must be >= 0, got {seed}")
    if not 1 <= quality <= 100:
        raise LCPError(f"--quality: JPEG quality is 1-100, got {quality}")
    inputs = [src, *depth_dirs, *(ann_in for ann_in, _ in annotations)]
    check_folder_output(out, overwrite, inputs)
    cocos, written = [], {}
    for ann_in, ann_out in annotations:  # fail on bad annotations before the long part
        check_outside_sources(ann_out, [*inputs, out])
        if (earlier := written.setdefault(Path(ann_out).resolve(), ann_in)) != ann_in:
            raise LCPError(f"{ann_out}: given as --ann-out for both {earlier} and {ann_in}; give each its own")
        if Path(ann_out).exists() and not overwrite:
            raise LCPError(f"{ann_out}: already exists; remove it or pass --overwrite")
        cocos.append(load_coco(ann_in))
    boxes = boxes_by_image(cocos) if annotations else {}  # every listed image, with or without boxes
    sources = [source for source in list_images(src) if not annotations or source.name in boxes]
    # an image linked from the output folder would go with the folder it replaces
    check_outside_sources(out, [source for source in sources if source.is_symlink()])
    renames = output_names(degradation, sources)
    rewritten = [
        (ann_out, rename_images(coco, renames, source=ann_in))
        for (ann_in, ann_out), coco in zip(annotations, cocos, strict=True)
    ]
    for (ann_in, _), coco in zip(annotations, cocos, strict=True):
        check_recorded_sizes(ann_in, coco, src)

    images: dict[str, Any] = {}
    # The rewritten annotations are written beside their targets first and renamed into place
    # right after the folder is published (before a folder it replaced is removed): a refused
    # --ann-out fails before the folder appears, and a kill cannot split the two.
    with contextlib.ExitStack() as renamed_after_the_folder:
        for ann_out, coco in rewritten:
            staged = renamed_after_the_folder.enter_context(atomic_path(ann_out, overwrite))
            staged.write_text(json_text(coco), encoding="utf-8")
        with atomic_folder(out, overwrite, inputs, then=renamed_after_the_folder.close) as tmp:
            job = _Job(degradation, depth, tmp, seed, quality, boxes)

            for result in map_with_progress(
                _synthesise_image,
                sources,
                workers,
                f"synth {degradation.name}",
                show=progress,
                initializer=_init_worker,
                initargs=(job,),
            ):
                images.update(result)
            sidecar = {
                "tool": "lcp data synth",
                "degradation": degradation.name,
                "model": degradation.model,
                "config": degradation.config(),
                "variants": degradation.variants(),
                "depth": depth.describe(),
                "seed": seed,
                "jpeg_quality": quality,
                "source_dir": os.path.relpath(src, out),
                "naming": f"<clean stem>{degradation.suffix({'<key>': '<value>'})}[_<key>_<value>...].jpg",
                "images": images,
            }
            write_json(tmp / SIDECAR_NAME, sidecar)
    return sidecar
