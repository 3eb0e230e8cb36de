"""Build-time checks of dataset configs: each problem becomes one LCPError naming the path.

mmdet itself fails late and obscurely on these (a missing image folder only shows up as a
FileNotFoundError inside a data-loader worker; categories that are missing from the
annotation file, or listed in another order, silently shift the labels), so the
datasets and tools call these checks before building anything.
"""

from __future__ import annotations

import json
import os.path as osp
from pathlib import Path
from typing import Any, Mapping, Sequence

from lcp.errors import LCPError



def _join(data_root: str | None, path: str | None) -> str | None:
    """Resolve `path` against a dataset's data_root the way mmdet's CustomDataset does."""
    if path is None or data_root is None or osp.isabs(path):
        return path
    return osp.join(data_root, path)


def check_image_folder(folder: str | None, what: str = "image folder") -> Path:
    folder_path = Path(folder or "")
    if not folder:
        raise LCPError(f"{what}: no folder given")
    if not folder_path.exists():
        raise LCPError(f"{folder}: {what} does not exist")
    if not folder_path.is_dir():
        raise LCPError(f"{folder}: {what} is not a folder")
    return folder_path


def list_images(folder: str, what: str = "image folder") -> list[str]:
    """Sorted file names of the images directly inside `folder` (what the data tools count as
    images); a missing or empty folder is an error naming its role `what`."""
    from lcp.data.images import IMAGE_SUFFIXES, list_images as list_image_files

    check_image_folder(folder, what)
    names = [path.name for path in list_image_files(folder, allow_empty=True)]
    if not names:
        raise LCPError(f"{folder}: {what} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return names


def annotation_categories(ann_file: str) -> list[str]:
    """Category names of a COCO annotation file, in the file's order."""
    path = Path(ann_file)
    if not path.is_file():
        raise LCPError(f"{ann_file}: annotation file does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LCPError(f"{ann_file}: annotation file is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
        raise LCPError(f"{ann_file}: not a COCO annotation file (no 'categories' list)")
    try:
        return [str(category["name"]) for category in data["categories"]]
    except (KeyError, TypeError):
        raise LCPError(f"{ann_file}: a category has no 'name'") from None


def check_categories(ann_file: str, classes: Sequence[str]) -> None:
    """`classes` must all be categories of `ann_file`, in the same relative order.

    mmdet 2.x numbers labels in the annotation file's category order, not in the order of
    `classes`, so a different order would silently give every box the wrong class name.
    Extra categories in the file are allowed: mmdet ignores their boxes.
    """
    in_file = annotation_categories(ann_file)
    classes = [str(name) for name in classes]
    missing = [name for name in classes if name not in in_file]
    if missing:
        raise LCPError(
            f"{ann_file}: categories do not match the config's classes: "
            f"missing {missing}; the file has {in_file}, the config has {classes}")
    in_file_order = [name for name in in_file if name in classes]
    if in_file_order != classes:
        raise LCPError(
            f"{ann_file}: categories are in another order than the config's classes: "
            f"the file has {in_file_order}, the config has {classes} "
            "(mmdet numbers labels in the file's order; reorder `classes`)")


def check_dataset_cfg(cfg: Mapping[str, Any]) -> None:
    """Check the paths (and classes) of an mmdet dataset config before it is built.

    Wrappers (RepeatDataset, DFPairedDataset, ...) are followed through their `dataset`
    key; ConcatDataset-style lists of configs are checked one by one.
    """
    if isinstance(cfg, (list, tuple)):
        for item in cfg:
            check_dataset_cfg(item)
        return
    if "dataset" in cfg:
        check_dataset_cfg(cfg["dataset"])
    if "datasets" in cfg:
        check_dataset_cfg(cfg["datasets"])
    if "df_img_prefix" in cfg:  # DFPairedDataset
        list_images(_join(cfg.get("data_root"), cfg["df_img_prefix"]),
                    "detection-favoured image folder (df_img_prefix)")
    if "ann_file" not in cfg and "img_prefix" not in cfg:
        return
    data_root = cfg.get("data_root")
    ann_file = _join(data_root, cfg.get("ann_file"))
    img_prefix = _join(data_root, cfg.get("img_prefix"))
    if isinstance(ann_file, (list, tuple)):
        raise LCPError(f"{list(ann_file)}: give one annotation file per dataset")
    if img_prefix is not None:
        check_image_folder(img_prefix, "image folder (img_prefix)")
    if ann_file:
        if not Path(ann_file).is_file():
            raise LCPError(f"{ann_file}: annotation file does not exist")
        classes = cfg.get("classes")
        if isinstance(classes, str):  # mmdet also reads classes from a text file, one a line
            if not Path(classes).is_file():
                raise LCPError(f"{classes}: classes file does not exist")
            classes = [line.strip() for line in Path(classes).read_text().splitlines() if line.strip()]
        if classes and ann_file.endswith(".json"):
            check_categories(ann_file, classes)
