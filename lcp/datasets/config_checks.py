"""Build-time checks of dataset configs: each problem becomes one LCPError naming the path.

mmdet itself fails late and obscurely on these (a missing image folder only shows up as a
FileNotFoundError inside a data-loader worker; categories that are missing from the
annotation file, or listed in another order, silently shift the labels), so the
datasets and tools call these checks before building anything.
"""

from __future__ import annotations

import json
import os.path as osp
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lcp.data.coco import unknown_category
from lcp.data.images import check_image_folder, list_images, read_size
from lcp.errors import LCPError


def _join(data_root: str | None, path: str | None) -> str | None:
    """Resolve `path` against a dataset's data_root the way mmdet's CustomDataset does."""
    if path is None or data_root is None or osp.isabs(path):
        return path
    return osp.join(data_root, path)


def read_annotation_file(ann_file: str) -> dict:
    """A COCO annotation file's content, with its `categories` list checked."""
    path = Path(ann_file)
    if not path.is_file():
        raise LCPError(f"{ann_file}: annotation file does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LCPError(f"{ann_file}: annotation file is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
        raise LCPError(f"{ann_file}: not a COCO annotation file (no 'categories' list)")
    return data


def annotation_categories(ann_file: str, data: dict | None = None) -> list[str]:
    """Category names of a COCO annotation file, in the file's order."""
    if data is None:
        data = read_annotation_file(ann_file)
    try:
        return [str(category["name"]) for category in data["categories"]]
    except (KeyError, TypeError):
        raise LCPError(f"{ann_file}: a category has no 'name'") from None


def check_categories(ann_file: str, classes: Sequence[str], data: dict | None = None) -> None:
    """`classes` must all be categories of `ann_file`, in the same relative order.

    mmdet 2.x numbers labels in the annotation file's category order, not in the order of
    `classes`, so a different order would silently give every box the wrong class name.
    Extra categories in the file are allowed: mmdet ignores their boxes.
    """
    data = read_annotation_file(ann_file) if data is None else data
    in_file = annotation_categories(ann_file, data)
    classes = [str(name) for name in classes]
    missing = [name for name in classes if name not in in_file]
    if missing:
        raise LCPError(
            f"{ann_file}: categories do not match the config's classes: "
            f"missing {missing}; the file has {in_file}, the config has {classes}"
        )
    in_file_order = [name for name in in_file if name in classes]
    if in_file_order != classes:
        raise LCPError(
            f"{ann_file}: categories are in another order than the config's classes: "
            f"the file has {in_file_order}, the config has {classes} "
            "(mmdet numbers labels in the file's order; reorder `classes`)"
        )
    ids = [category.get("id") for category in data["categories"] if str(category.get("name")) in classes]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise LCPError(f"{ann_file}: category ids {ids} must be integers")
    if ids != sorted(ids):
        raise LCPError(
            f"{ann_file}: the ids of {classes} are {ids}, which do not ascend in that order; COCOeval sorts "
            "ids, so mmdet's class-wise AP would name the wrong classes. Renumber them in class order "
            "(`lcp data convert coco` writes 1..N)"
        )


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_id(value) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _class_category_ids(data: dict, classes: Sequence[str] | None) -> set:
    """The ids of the categories of `classes` (all categories when None) that are ids at all."""
    return {
        category.get("id")
        for category in data["categories"]
        if isinstance(category, dict)
        and _is_id(category.get("id"))
        and (classes is None or str(category.get("name")) in classes)
    }


def _has_trainable_box(data: dict, classes: Sequence[str] | None) -> bool:
    """Whether mmdet's CocoDataset would train on any box. Its _parse_ann_info, in this order,
    drops a box that is ignored, does not overlap its image, has no area or is under 1 px wide
    or high, is of another class, or is crowd; and fails with KeyError('area') inside a
    data-loader worker on a box without `area` that got that far (an LCPError here)."""
    wanted = _class_category_ids(data, classes)
    sizes = {
        image.get("id"): (image.get("width"), image.get("height"))
        for image in data.get("images") or []
        if isinstance(image, dict)
    }
    found = False
    for ann in data.get("annotations") or []:
        if not isinstance(ann, dict) or ann.get("ignore"):
            continue
        bbox = ann.get("bbox")
        width, height = sizes.get(ann.get("image_id"), (None, None))
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(_is_number, [*bbox, width, height]))):
            continue  # the data check names these; mmdet's own fate for them is not the question here
        x, y, w, h = bbox
        if max(0, min(x + w, width) - max(x, 0)) * max(0, min(y + h, height) - max(y, 0)) == 0:
            continue
        area = ann["area"]
        if not _is_number(area) or area <= 0 or w < 1 or h < 1:
            continue
        if ann.get("category_id") in wanted and not ann.get("iscrowd"):
            found = True
    return found


def _has_box_to_find(data: dict, classes: Sequence[str] | None) -> bool:
    """Whether COCOeval has any box of `classes` to find: with none (crowd and `ignore` boxes
    are not to be found) every AP is -1, "nothing to measure", whatever the detections."""
    wanted = _class_category_ids(data, classes)
    return any(
        isinstance(ann, dict) and ann.get("category_id") in wanted and not ann.get("iscrowd") and not ann.get("ignore")
        for ann in data.get("annotations") or []
    )


def _duplicate(values: list) -> Any:
    seen = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


# The annotation files this process has checked (with their time, image folder and classes) ->
# whether as a training set: a training checks its sets before the work dir is made and again
# when it builds them, and reading every image's header twice, or saying a warning twice, buys
# nothing. A file checked as a training set passes as any set; the other way round it does not.
_CHECKED: dict[tuple, bool] = {}


def check_entries(ann_file: str, data: dict, classes: Sequence[str] | None, for_training: bool) -> str | None:
    """Ids and boxes that pycocotools and mmdet read without checking.

    Image and annotation ids must be unique integers or strings, image ids all of one kind:
    pycocotools keeps the later of two images with one id and scores both images' boxes against
    its detections, and COCOeval sorts the image ids (after the whole test pass). Every
    annotation's category_id must be a category's id (unknown_category). An annotation
    mmdet's training reads (every one not flagged `ignore`, whatever its category) needs a
    4-number `bbox` and a numeric `area`; for evaluation, COCOeval reads the `bbox` of the
    classes' annotations and the `area` of those not crowd (its area ranges, after the whole
    test pass). Boxes that mmdet's training drops (under 1 px wide or high, or of no area: the
    object becomes background) or that COCOeval can never match (no width or height) or counts
    in no size range (a negative area) are not refused (COCO's own train2017 has two among
    860 001): the warning that counts them is returned."""
    images = data["images"]
    annotations = data.get("annotations") or []
    if not isinstance(annotations, list) or not all(isinstance(ann, dict) for ann in annotations):
        raise LCPError(f"{ann_file}: not a COCO annotation file ('annotations' is not a list of objects)")
    for key, entries in (("images", images), ("annotations", annotations)):
        ids = [entry.get("id") for entry in entries]
        bad = next((i for i, value in enumerate(ids) if not _is_id(value)), None)
        if bad is not None:
            raise LCPError(f"{ann_file}: {key}[{bad}] has id {ids[bad]!r}, neither an integer nor a string")
        if (twice := _duplicate(ids)) is not None:
            raise LCPError(f"{ann_file}: {key[:-1]} id {twice!r} appears twice; ids must be unique")
    if len({type(image["id"]) for image in images}) > 1:
        raise LCPError(f"{ann_file}: its image ids mix integers and strings; give them all as one or the other")
    if problem := unknown_category(data):
        raise LCPError(f"{ann_file}: {problem}")
    evaluated = _class_category_ids(data, classes)
    degenerate = []
    for index, ann in enumerate(annotations):
        category = ann.get("category_id")
        read = not ann.get("ignore") if for_training else _is_id(category) and category in evaluated
        if not read:
            continue
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(_is_number, bbox))):
            raise LCPError(f"{ann_file}: annotations[{index}] has bbox {bbox!r}, not [x, y, width, height]")
        if ann.get("iscrowd") and not for_training:
            continue
        area = ann.get("area")
        if not _is_number(area):
            raise LCPError(f"{ann_file}: annotations[{index}] has no numeric 'area', which mmdet and COCOeval read")
        if for_training and (bbox[2] < 1 or bbox[3] < 1 or area <= 0):  # mmdet's CocoDataset._parse_ann_info
            degenerate.append(index)
        elif not for_training and (bbox[2] <= 0 or bbox[3] <= 0 or area < 0):
            degenerate.append(index)
    if not degenerate:
        return None
    first = annotations[degenerate[0]]
    what = (
        "are dropped by mmdet's training (under 1 px wide or high, or of no area)"
        if for_training
        else "can never be matched or lie in no size range of COCOeval (no width or height, or a negative area)"
    )
    return (
        f"warning: {ann_file}: {len(degenerate)} of its {len(annotations)} boxes {what}, the first "
        f"annotations[{degenerate[0]}] (bbox {first.get('bbox')}, area {first.get('area')})"
    )


def check_annotation_file(
    ann_file: str,
    img_prefix: str | None,
    classes: Sequence[str] | None = None,
    need_boxes: bool = False,
    evaluated: bool = False,
) -> None:
    """A COCO annotation file the dataset can use: categories matching `classes`, at least one
    image, every image present in `img_prefix`, complete and of the size the file records (its
    header and last bytes read, nothing decoded), with `need_boxes` (a training set) at least
    one box to train on, and with `evaluated` (a set AP is measured on) at least one box to find.

    mmdet would evaluate a set of no images as AP 0 for every class, fail a training set
    without boxes with "need at least one array to concatenate", find a missing, empty or
    truncated image only inside a data-loader worker once training has started (a traceback
    that names no file), read boxes recorded for another size than the file's silently
    at the wrong place, and evaluate a set without boxes as AP "n/a" for every class, exit 0.
    """
    stamp = osp.getmtime(ann_file) if osp.isfile(ann_file) else None  # a missing file: read_annotation_file says so
    checked = (ann_file, stamp, img_prefix, tuple(classes or ()))
    if stamp is not None and checked in _CHECKED and (_CHECKED[checked] or not (need_boxes or evaluated)):
        return
    data = read_annotation_file(ann_file)
    if classes:
        check_categories(ann_file, classes, data)
    images = data.get("images")
    if not isinstance(images, list):
        raise LCPError(f"{ann_file}: not a COCO annotation file (no 'images' list)")
    if not images:
        raise LCPError(f"{ann_file}: lists no images; an empty set has nothing to train or evaluate on")
    names = [image.get("file_name") if isinstance(image, dict) else None for image in images]
    if not all(isinstance(name, str) and name for name in names):
        raise LCPError(f"{ann_file}: an image has no 'file_name'")
    if (twice := _duplicate(names)) is not None:  # its boxes would count twice against one image's detections
        raise LCPError(f"{ann_file}: {twice} is listed twice, as two images; list each file once")
    warning = check_entries(ann_file, data, classes, for_training=need_boxes)
    paths = [osp.join(img_prefix, name) if img_prefix else name for name in names]
    missing = [name for name, path in zip(names, paths, strict=True) if not osp.isfile(path)]
    if missing:
        raise LCPError(
            f"{ann_file}: {len(missing)} of its {len(names)} images missing from "
            f"{img_prefix or 'the working directory'}, the first {missing[0]}"
        )
    _check_image_files(ann_file, images, paths)
    if need_boxes and not _has_trainable_box(data, classes):
        which = f" of the classes {list(classes)}" if classes else ""
        raise LCPError(f"{ann_file}: no boxes{which} in its {len(images)} images; training needs at least one")
    if evaluated and not _has_box_to_find(data, classes):
        which = f" of the classes {list(classes)}" if classes else ""
        raise LCPError(f"{ann_file}: no boxes{which} in its {len(images)} images; AP is undefined without one to find")
    if warning:
        print(warning, file=sys.stderr)
    _CHECKED[checked] = _CHECKED.get(checked, False) or need_boxes


def _check_image_files(ann_file: str, images: Sequence[Mapping[str, Any]], paths: Sequence[str]) -> None:
    """Every image readable, complete and of its recorded size (where it records one)."""
    wrong = []
    for image, path in zip(images, paths, strict=True):
        recorded = (image.get("width"), image.get("height"))
        size = read_size(path, expected=recorded)
        if isinstance(size, str):
            raise LCPError(f"{path}: {size} (listed in {ann_file})")
        if all(isinstance(side, int) and side > 0 for side in recorded) and recorded != size:
            wrong.append((image["file_name"], recorded, size))
    if wrong:
        name, (width, height), (file_width, file_height) = wrong[0]
        raise LCPError(
            f"{ann_file}: {len(wrong)} of its {len(images)} images differ from the size it records, the first "
            f"{name}: recorded {width}x{height}, the file is {file_width}x{file_height} as mmdet reads it (EXIF "
            "orientation applied), so its boxes would land elsewhere; give the images the size they were "
            "labelled at, or scale the boxes and the recorded size to the files"
        )


def read_classes_file(path: str) -> list[str]:
    """The class names of a classes file as mmdet reads them (mmcv's list_from_file), refused
    when a line is blank or has spaces around its name: mmcv keeps both, so 'car ' is no
    category of the annotations, and mmdet gives its label to the next class silently."""
    if not Path(path).is_file():
        raise LCPError(f"{path}: classes file does not exist")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LCPError(f"{path}: classes file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    names = text.split("\n")  # read_text turned \r\n and \r into \n, as mmcv's list_from_file reads it
    if names[-1] == "":
        names.pop()  # the newline that ends the last line
    for number, name in enumerate(names, 1):
        if not name or name != name.strip():
            raise LCPError(
                f"{path}: line {number} is {name!r}; give one class name a line, without blank lines "
                "or spaces around a name"
            )
    return names


def check_dataset_cfg(cfg: Mapping[str, Any], for_training: bool = False, for_evaluation: bool = False) -> None:
    """Check the paths, classes and annotation files of an mmdet dataset config before it is
    built; `for_training`: it is a training set, so it needs boxes; `for_evaluation`: AP is
    measured on it, so it needs a box of its classes to find.

    Wrappers (RepeatDataset, DFPairedDataset, ...) are followed through their `dataset`
    key; ConcatDataset-style lists of configs are checked one by one.
    """
    if isinstance(cfg, (list, tuple)):
        for item in cfg:
            check_dataset_cfg(item, for_training, for_evaluation)
        return
    if "dataset" in cfg:
        check_dataset_cfg(cfg["dataset"], for_training, for_evaluation)
    if "datasets" in cfg:
        check_dataset_cfg(cfg["datasets"], for_training, for_evaluation)
    if "df_img_prefix" in cfg:  # DFPairedDataset
        list_images(
            _join(cfg.get("data_root"), cfg["df_img_prefix"]), "detection-favoured image folder (df_img_prefix)"
        )
        df_ann = _join(cfg.get("data_root"), cfg.get("df_ann_file"))
        if df_ann and not Path(df_ann).is_file():
            raise LCPError(
                f"{df_ann}: the detection-favoured images' annotation file (df_ann) does not exist; give the "
                "clean set's train split, or --cfg-options df_ann=None to draw from the whole folder"
            )
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
            classes = read_classes_file(classes)
        if ann_file.endswith(".json"):
            check_annotation_file(
                ann_file,
                img_prefix,
                [str(name) for name in classes] if classes else None,
                need_boxes=for_training,
                evaluated=for_evaluation,
            )
