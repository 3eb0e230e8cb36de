"""`check_set`: every check of `lcp data check` on one image set, and the report it returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lcp.data.check.annotations import check_annotations, check_every_class_has_boxes, check_no_image_in_two_files
from lcp.data.check.findings import Findings
from lcp.data.check.pairs import check_pairs, pair_images, summarise_degradation
from lcp.data.check.visibility import MAX_ERASED_SHARE, check_objects
from lcp.data.coco import load_coco
from lcp.data.degradations import DEGRADATIONS, split_lowq_stem
from lcp.data.degradations.base import ERASED_BELOW
from lcp.data.images import inspect_image_file, list_images
from lcp.data.synth import SIDECAR_NAME
from lcp.errors import LCPError
from lcp.io import read_json
from lcp.progress import map_with_progress

NONE = "none"  # --degradation of a real low-quality set: annotations and images alone


def check_set(
    lowq_dir: Path,
    clean_dir: Path | None,
    annotation_files: list[Path],
    classes: list[str] | None = None,
    degradation: str | None = None,
    workers: int = 1,
    progress: bool = True,
    erased_below: float = ERASED_BELOW,
    max_erased_share: float = MAX_ERASED_SHARE,
) -> dict[str, Any]:
    """Run every check; return the report (its 'ok' says whether the gate passes)."""
    for option, value in (("--erased-below", erased_below), ("--max-erased-share", max_erased_share)):
        if not 0 <= value <= 1:
            raise LCPError(f"{option}: a share in [0, 1], got {value}")
    lowq_images = list_images(lowq_dir)
    annotations = [(path, load_coco(path)) for path in annotation_files]  # bad json: LCPError now
    findings = Findings()
    sidecar = read_sidecar(lowq_dir) if degradation != NONE else None
    kind = _degradation_kind(degradation, sidecar, lowq_images, findings, lowq_dir, clean_dir)
    records = sidecar.get("images", {}) if sidecar else {}

    if kind is None:  # nothing synthesised: decode every image, pair none
        clean_dir, clean_images, pairs = None, [], []
        measured = map_with_progress(
            inspect_size, [str(p) for p in lowq_images], workers, "check", "image", show=progress
        )
        for result in measured:
            if result["problem"] is not None:
                findings.error(result["problem"][0], result["lowq"], result["problem"][1])
        sizes = {Path(r["lowq"]): r["lowq_size"] for r in measured}
        measured, objects = [], {}
    else:
        clean_images = list_images(clean_dir)
        pairs = pair_images(lowq_images, clean_images, kind, records, findings)
        measured = check_pairs(pairs, kind, records, findings, workers, progress)
        # Sizes of the files already decoded (None: broken, already reported), for the annotations.
        sizes = {Path(r[role]): r[f"{role}_size"] for r in measured for role in ("lowq", "clean")}
        objects = check_objects(
            lowq_dir, lowq_images, kind, records, bool(annotations), erased_below, max_erased_share, findings
        )
    folders = [lowq_dir] if clean_dir is None else [lowq_dir, clean_dir]
    counts = {
        "lowq_images": len(lowq_images),
        "clean_images": len(clean_images),
        "pairs": len(pairs),
        "annotation_files": len(annotations),
        "annotations": 0,
        "annotated_images": 0,
    }
    for path, coco in annotations:
        check_annotations(path, coco, folders, classes, sizes, findings)
        counts["annotations"] += len(coco["annotations"])
        counts["annotated_images"] += len(coco["images"])
    if annotations:
        check_every_class_has_boxes(annotations, classes, findings)
        check_no_image_in_two_files(annotations, findings)
        if kind is None:
            listed = {image["file_name"] for _, coco in annotations for image in coco["images"]}
            for path in lowq_images:
                if path.name not in listed:
                    findings.warning("image_not_annotated", path, "in no annotation file")

    images = {Path(r["lowq"]).name: {"clean": Path(r["clean"]).name, "measured": r.get("measured")} for r in measured}
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
        "degradation_summary": summarise_degradation(measured, kind),
        "depth_sources": objects.get("depth_sources", {}),
        "box_visibility": objects.get("box_visibility", {}),
        "images": images,
    }


def read_sidecar(lowq_dir: Path) -> dict | None:
    path = lowq_dir / SIDECAR_NAME
    if not path.exists():
        return None
    sidecar = read_json(path)
    if not isinstance(sidecar, dict) or not isinstance(sidecar.get("images"), dict):
        raise LCPError(f"{path}: not a synthesis sidecar (no 'images' object)")
    for name, record in sidecar["images"].items():
        if not _is_record(record):
            raise LCPError(f"{path}: the record of {name} is not what lcp data synth writes (edited by hand?)")
    return sidecar


def _is_record(record: Any) -> bool:
    """The parts of an image's sidecar record the check computes with have their types."""
    if not isinstance(record, dict) or not isinstance(record.get("expected", {}), dict):
        return False
    colours = [record[key] for key in ("atmospheric_light_rgb", "backscatter_rgb") if key in record]
    return all(_is_measure(value) for value in [*record.get("expected", {}).values(), *colours]) and all(
        isinstance(colour, list) and len(colour) == 3 and None not in colour for colour in colours
    )


def _is_measure(value: Any) -> bool:
    """A sidecar's expected measurement: a number, None, or a list of them (per channel)."""
    if isinstance(value, list):
        return all(map(_is_measure, value))
    return value is None or isinstance(value, int | float) and not isinstance(value, bool)


def _degradation_kind(
    requested: str | None,
    sidecar: dict | None,
    lowq_images: list[Path],
    findings: Findings,
    lowq_dir: Path,
    clean_dir: Path | None,
) -> str | None:
    """The degradation to check, or None: a real low-quality set, checked without pairing."""
    if requested == NONE:
        return None
    recorded = sidecar.get("degradation") if sidecar else None
    if requested and recorded and requested != recorded:
        findings.error(
            "degradation_mismatch",
            lowq_dir / SIDECAR_NAME,
            f"the sidecar says {recorded}, --degradation says {requested}",
        )
    kind = requested or recorded
    if kind is None:
        markers = {cls.marker: name for name, cls in DEGRADATIONS.items()}
        found = {
            markers[split[1]] for p in lowq_images if (split := split_lowq_stem(p.stem, list(markers))) is not None
        }
        if not found and clean_dir is None:
            return None
        if len(found) != 1:
            raise LCPError(
                f"{lowq_dir}: cannot tell the degradation from the file names "
                f"(found {sorted(found) or 'none'}); pass --degradation "
                f"({'|'.join(sorted(DEGRADATIONS))}, or none for a real low-quality set)"
            )
        kind = found.pop()
    if kind not in DEGRADATIONS:
        raise LCPError(f"{lowq_dir / SIDECAR_NAME}: unknown degradation {kind!r}")
    if clean_dir is None:
        raise LCPError(
            f"{lowq_dir}: a {kind} set is checked against its clean images; pass --clean, "
            "or --degradation none to check its annotations and images alone"
        )
    return kind


def inspect_size(path: str) -> dict[str, Any]:
    """Decode one image: its [width, height], or the problem (code, description)."""
    image, problem = inspect_image_file(path)
    return {"lowq": path, "lowq_size": None if image is None else [image.shape[1], image.shape[0]], "problem": problem}
