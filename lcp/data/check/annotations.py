"""The checks of COCO annotation files against the images they list and the configs' classes."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from lcp.data.check.findings import Findings
from lcp.data.images import inspect_image_file

BOX_SLACK_PX = 0.5


def check_annotations(
    path: Path,
    coco: dict,
    folders: list[Path],
    classes: list[str] | None,
    sizes: dict[Path, list[int]],
    findings: Findings,
) -> None:
    categories = {c["id"]: c["name"] for c in coco["categories"]}
    if classes is not None:
        names = list(categories.values())
        for cid, name in categories.items():
            if name not in classes:
                findings.error(
                    "unknown_category",
                    path,
                    f"category {name!r} (id {cid}) is not one of the classes {','.join(classes)}",
                )
        for name in classes:
            if name not in names:
                findings.error("category_mismatch", path, f"class {name!r} has no category in this file")
    for key, reason in (
        ("images", "duplicate_image_id"),
        ("annotations", "duplicate_annotation_id"),
        ("categories", "duplicate_category_id"),
    ):
        seen = set()
        for entry in coco[key]:
            if entry["id"] in seen:
                findings.error(reason, path, f"{key[:-1]} id {entry['id']} appears more than once")
            seen.add(entry["id"])
    category_ids: dict[str, list] = defaultdict(list)
    for category in coco["categories"]:
        category_ids[category["name"]].append(category["id"])
    for name, ids in category_ids.items():
        if len(ids) > 1:  # mmdet labels the later ids num_classes, i.e. background: their boxes are lost
            findings.error(
                "duplicate_category_name", path, f"category {name!r} has ids {', '.join(map(str, ids))}; one id a name"
            )
    images = {image["id"]: image for image in coco["images"]}
    file_sizes: dict[Any, list[int] | None] = {}  # image id -> [width, height] of the file
    seen_names = set()
    found_in: dict[Path, list[str]] = defaultdict(list)
    for image in coco["images"]:
        name = image["file_name"]
        if name in seen_names:
            findings.error("duplicate_file_name", path, f"{name} is listed twice")
        seen_names.add(name)
        folder, size = _image_size(name, folders, sizes, findings, path)
        file_sizes[image["id"]] = size
        if folder is not None:
            found_in[folder].append(name)
        recorded = [image.get("width"), image.get("height")]
        if size and None not in recorded and recorded != size:
            findings.error(
                "size_mismatch",
                path,
                f"{name}: recorded {recorded[0]}x{recorded[1]}, the file is {size[0]}x{size[1]} as mmdet reads it "
                "(EXIF orientation applied)",
            )
    if len(found_in) > 1:  # training reads one folder: the images of the other are missing there
        detail = " and ".join(f"{len(names)} in {folder} (e.g. {names[0]})" for folder, names in found_in.items())
        findings.error("images_in_two_folders", path, f"its images are {detail}; a file lists the images of one set")
    annotated = set()
    for ann in coco["annotations"]:
        where = f"annotation {ann['id']}"
        if ann["category_id"] not in categories:
            findings.error(
                "unknown_category", path, f"{where}: category id {ann['category_id']!r} is not in categories"
            )
        image = images.get(ann["image_id"])
        if image is None:
            findings.error("orphan_annotation", path, f"{where}: image id {ann['image_id']!r} is not in images")
            continue
        annotated.add(ann["image_id"])
        _check_box(ann["bbox"], image["file_name"], file_sizes.get(ann["image_id"]), where, path, findings)
        area = ann.get("area")
        if not ann.get("iscrowd") and not (_is_coordinate(area) and area > 0):
            # mmdet trains on no such box, COCOeval counts it in no size range (or crashes without one)
            findings.error("box_nonpositive_area", path, f"{where} on {image['file_name']}: area {area!r}")
    for image in coco["images"]:
        if image["id"] not in annotated:
            findings.warning("images_without_annotations", path, f"{image['file_name']} has no boxes")


def check_every_class_has_boxes(
    annotations: list[tuple[Path, dict]], classes: list[str] | None, findings: Findings
) -> None:
    """A category without a box in any file (crowd and ignored boxes do not count) is an error:
    the detector never sees it and the evaluation scores it without ground truth. One without a
    box in a single file is a warning. With --classes only those are looked at (other
    categories, and classes without a category, are errors already)."""
    boxes: dict[str, int] = defaultdict(int)
    for path, coco in annotations:
        names = {c["id"]: c["name"] for c in coco["categories"]}
        in_file: dict[str, int] = defaultdict(int)
        for ann in coco["annotations"]:
            if not ann.get("iscrowd") and not ann.get("ignore"):  # mmdet trains on neither
                in_file[names.get(ann["category_id"])] += 1
        for name in names.values():
            if classes is not None and name not in classes:
                continue
            boxes[name] += in_file[name]
            if not in_file[name]:
                findings.warning("class_without_boxes_in_file", path, f"class {name!r} has no box in this file")
    for name, count in boxes.items():
        if not count:
            findings.error(
                "class_without_boxes",
                ", ".join(str(path) for path, _ in annotations),
                f"class {name!r} has no box in any annotation file",
            )


def check_no_image_in_two_files(annotations: list[tuple[Path, dict]], findings: Findings) -> None:
    """An image in two annotation files (a train and a test split) is an error: the detector
    would be scored on an image it trained on."""
    first_file: dict[str, Path] = {}
    for path, coco in annotations:
        for name in dict.fromkeys(image["file_name"] for image in coco["images"]):
            if first_file.setdefault(name, path) != path:
                findings.error("image_in_two_files", path, f"{name} is listed in {first_file[name]} too")


def _image_size(
    name: str, folders: list[Path], sizes: dict[Path, list[int]], findings: Findings, source: Path
) -> tuple[Path | None, list[int] | None]:
    """(the first folder holding `name`, its [width, height] or None when broken), or (None, None)."""
    for folder in folders:
        candidate = folder / name
        if candidate in sizes:
            return folder, sizes[candidate]
        if candidate.is_file():
            image, problem = inspect_image_file(candidate)
            if problem is not None:
                findings.error(problem[0], candidate, f"{problem[1]} (referenced by {source})")
                sizes[candidate] = None
            else:
                sizes[candidate] = [image.shape[1], image.shape[0]]
            return folder, sizes[candidate]
    findings.error("missing_image", source, f"{name} is not in " + " nor ".join(str(f) for f in folders))
    return None, None


def _check_box(bbox: Any, name: str, size: list[int] | None, where: str, path: Path, findings: Findings) -> None:
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_coordinate(v) for v in bbox)):
        findings.error("invalid_box", path, f"{where}: bbox {bbox!r} is not [x, y, w, h] of finite numbers")
        return
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        findings.error("box_nonpositive_area", path, f"{where} on {name}: width {w}, height {h}")
        return
    if size and (
        x < -BOX_SLACK_PX or y < -BOX_SLACK_PX or x + w > size[0] + BOX_SLACK_PX or y + h > size[1] + BOX_SLACK_PX
    ):
        findings.error(
            "box_outside_image", path, f"{where} on {name}: [{x}, {y}, {w}, {h}] leaves the {size[0]}x{size[1]} image"
        )


def _is_coordinate(value: Any) -> bool:
    """A finite number; a NaN box fails every comparison below and would pass them all."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
