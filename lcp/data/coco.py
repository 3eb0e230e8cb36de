"""COCO detection annotations: loading with structural checks, building, writing, renaming.

Layout the configs read: `<scene>/annotations/<imageset>_<split>.json`, whose images'
`file_name` is the image's name inside the flat image folder `<scene>/<imageset>/`.
Boxes are COCO `[x, y, width, height]` in pixels; category ids start at 1.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

from lcp.errors import LCPError
from lcp.io import read_json, write_json


def load_coco(path: str | os.PathLike) -> dict[str, Any]:
    """Read a COCO json; an LCPError names the file when it is not a COCO detection file.

    Only the structure is checked here (lists of dicts with the keys detection needs, of
    the types in FIELD_TYPES); content problems (boxes, ids, categories) are the business of `lcp data check`.
    """
    path = Path(path)
    coco = read_json(path)
    if not isinstance(coco, dict):
        raise LCPError(f"{path}: not a COCO file (top level is not an object)")
    required = {
        "images": ("id", "file_name"),
        "annotations": ("id", "image_id", "category_id", "bbox"),
        "categories": ("id", "name"),
    }
    for section, keys in required.items():
        entries = coco.get(section)
        if not isinstance(entries, list):
            raise LCPError(f"{path}: not a COCO file (no '{section}' list)")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or any(key not in entry for key in keys):
                raise LCPError(f"{path}: {section}[{index}] lacks one of {', '.join(keys)}")
            for key, (types, kind) in FIELD_TYPES[section].items():
                value = entry.get(key)
                if key in entry and (isinstance(value, bool) or not isinstance(value, types)):
                    raise LCPError(f"{path}: {section}[{index}].{key} is {value!r}, not {kind}")
    return coco


_ID = ((int, str), "an id (a whole number or a string)")
_TEXT = ((str,), "a string")
_COUNT = ((int,), "a whole number")
# what the tools index and compare by; a bool passes isinstance(int) and is refused by name
FIELD_TYPES = {
    "images": {"id": _ID, "file_name": _TEXT, "width": _COUNT, "height": _COUNT},
    "annotations": {"id": _ID, "image_id": _ID, "category_id": _ID},
    "categories": {"id": _ID, "name": _TEXT},
}


def categories_for(classes: Iterable[str]) -> list[dict[str, Any]]:
    """COCO categories for class names, ids 1..N in the given order."""
    return [{"id": index, "name": name, "supercategory": "object"} for index, name in enumerate(classes, start=1)]


def build_coco(
    images: list[dict], annotations: list[dict], categories: list[dict], description: str = ""
) -> dict[str, Any]:
    return {
        "info": {"description": description},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def write_coco(path: str | os.PathLike, coco: Mapping[str, Any], overwrite: bool = False) -> None:
    """Write atomically; an existing file is an LCPError unless overwrite."""
    write_json(path, coco, overwrite=overwrite)


def subset(coco: Mapping[str, Any], image_ids: Iterable[int]) -> dict[str, Any]:
    """The images with these ids (in the coco's order) and their annotations."""
    keep = set(image_ids)
    images = [image for image in coco["images"] if image["id"] in keep]
    annotations = [ann for ann in coco["annotations"] if ann["image_id"] in keep]
    return {**coco, "images": images, "annotations": annotations}


def unknown_category(coco: Mapping[str, Any]) -> str | None:
    """'annotations[i] ...' describing the first annotation whose category_id equals no
    category's id, else None. mmdet's CocoDataset and pycocotools' COCOeval leave such a box
    out without a word: a category_id "1" beside a category id 1 is one box fewer to train on
    and to score against."""
    ids = [entry.get("id") for entry in coco["categories"] if isinstance(entry, dict)]
    known = {value for value in ids if isinstance(value, Hashable)}
    for index, ann in enumerate(coco["annotations"]):
        category = ann.get("category_id")
        if isinstance(category, Hashable) and category in known:
            continue
        spelt_alike = next((value for value in known if str(value) == str(category)), None)
        hint = f"; write it as {spelt_alike!r}, as the category does" if spelt_alike is not None else ""
        listed = ", ".join(map(repr, ids[:8])) + (", ..." if len(ids) > 8 else "")
        return (
            f"annotations[{index}] (id {ann.get('id')!r}) has category_id {category!r}, the id of no category "
            f"(they are {listed}){hint}; mmdet and COCOeval would leave its box out silently"
        )
    return None


def check_references(coco: Mapping[str, Any], source: str | os.PathLike = "annotations") -> None:
    """An LCPError naming `source` unless every image has its own id and file and every
    annotation refers to an image and a category (what mapping annotations onto new images
    relies on, and what training and evaluation on them need). The fields' types are
    load_coco's business."""
    seen_ids: dict[Any, str] = {}
    seen_files: set[str] = set()
    for image in coco["images"]:
        image_id, name = image["id"], image["file_name"]
        if image_id in seen_ids:
            raise LCPError(f"{source}: image id {image_id} is used by {seen_ids[image_id]!r} and {name!r}")
        if name in seen_files:
            raise LCPError(f"{source}: the file {name!r} is listed twice among the images")
        seen_ids[image_id] = name
        seen_files.add(name)
    for ann in coco["annotations"]:
        image_id = ann["image_id"]
        if image_id not in seen_ids:
            raise LCPError(f"{source}: annotation {ann['id']} refers to image id {image_id!r}, which no image has")
    if problem := unknown_category(coco):
        raise LCPError(f"{source}: {problem}")


def rename_images(
    coco: Mapping[str, Any], renames: Mapping[str, list[str]], source: str | os.PathLike = "annotations"
) -> dict[str, Any]:
    """Replace each image by one entry per new name in `renames[file_name]`, with its annotations.

    With one new name per image, image and annotation ids are kept; with several (one
    synthesised image per parameter setting) images and annotations are renumbered from 1.
    A file_name missing from `renames` is an LCPError naming `source`.
    """
    check_references(coco, source)
    missing = [image["file_name"] for image in coco["images"] if image["file_name"] not in renames]
    if missing:
        raise LCPError(f"{source}: {len(missing)} image(s) not among the synthesised sources, e.g. {missing[0]!r}")
    keep_ids = all(len(renames[image["file_name"]]) == 1 for image in coco["images"])
    by_image: dict[Any, list[dict]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    images, annotations = [], []
    for image in coco["images"]:
        for new_name in renames[image["file_name"]]:
            new_image = {**image, "file_name": new_name}
            if not keep_ids:
                new_image["id"] = len(images) + 1
            images.append(new_image)
            for ann in by_image.get(image["id"], []):
                new_ann = {**ann, "image_id": new_image["id"]}
                if not keep_ids:
                    new_ann["id"] = len(annotations) + 1
                annotations.append(new_ann)
    return {**coco, "images": images, "annotations": annotations}
