"""COCO json + images: re-map categories to the configured classes, re-split, copy images flat.

IMAGES is the folder the `file_name`s of the json files are relative to (they may contain
sub-folders: the output is flat, names made unique as in `folder`).

Rules:
  * --train JSON and/or --test JSON: each file's images keep that split; --test-fraction or
    --test-list pool all images and re-split them.
  * --rename OLD=NEW renames a source category (two may be merged into one name);
    --classes fixes the written classes and their category order (ids 1..N); annotations
    of other categories are dropped and counted. Default: the source categories in id order.
  * iscrowd is kept; segmentation is not copied (boxes only); boxes reaching outside the
    image are clipped, boxes left without area dropped, both reported. Image sizes come
    from the decoded images, not from the json.
  * a missing image file, an image listed twice, an annotation naming an unknown image or
    category, or a malformed entry: error naming the json file and the entry.
  * images left with no box are kept as negatives unless --drop-empty.
"""

from __future__ import annotations

import argparse
from numbers import Real
from pathlib import Path

from lcp.data.convert.common import (
    Box,
    Report,
    Sample,
    add_drop_empty_argument,
    add_output_arguments,
    add_split_arguments,
    assign_splits,
    check_output_free,
    class_list,
    wants_resplit,
    write_image_set,
)
from lcp.errors import LCPError
from lcp.io import read_json

HELP = "COCO json + images: re-map categories, re-split, copy images flat (your own data)"


def rename_pair(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old.strip() or not new.strip():
        raise argparse.ArgumentTypeError(f"expected OLD=NEW, got {text!r}")
    return old.strip(), new.strip()


def _entries(data: dict, key: str, path: Path) -> list[dict]:
    entries = data.get(key)
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise LCPError(f"{path}: `{key}` must be a list of objects")
    return entries


def _field(entry: dict, key: str, kind, where: str):
    value = entry.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise LCPError(f"{where}: `{key}` is {value!r}, expected {getattr(kind, '__name__', 'a number')}")
    return value


def read_coco(path: Path, split: str, images_root: Path, renames: dict[str, str]) -> tuple[list[Sample], list[str]]:
    """The samples of one COCO file (boxes labelled by renamed category name) and its
    category names in id order."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise LCPError(f"{path}: not a COCO file (the top level must be an object)")
    categories: dict[int, str] = {}
    for i, entry in enumerate(_entries(data, "categories", path)):
        where = f"{path}: categories[{i}]"
        category_id = _field(entry, "id", int, where)
        if category_id in categories:
            raise LCPError(f"{where}: category id {category_id} appears twice")
        name = _field(entry, "name", str, where)
        categories[category_id] = renames.get(name, name)
    samples: dict[int, Sample] = {}
    for i, entry in enumerate(_entries(data, "images", path)):
        where = f"{path}: images[{i}]"
        image_id = _field(entry, "id", int, where)
        if image_id in samples:
            raise LCPError(f"{where}: image id {image_id} appears twice")
        image = images_root / _field(entry, "file_name", str, where)
        if not image.is_file():
            raise LCPError(f"{where}: image file {image} not found")
        samples[image_id] = Sample(image, split)
    for i, entry in enumerate(_entries(data, "annotations", path)):
        where = f"{path}: annotations[{i}]"
        sample = samples.get(_field(entry, "image_id", int, where))
        if sample is None:
            raise LCPError(f"{where}: image_id {entry['image_id']} is not in `images`")
        label = categories.get(_field(entry, "category_id", int, where))
        if label is None:
            raise LCPError(f"{where}: category_id {entry['category_id']} is not in `categories`")
        bbox = entry.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, Real) and not isinstance(v, bool) for v in bbox)):
            raise LCPError(f"{where}: `bbox` is {bbox!r}, expected [x, y, width, height]")
        x, y, w, h = (float(v) for v in bbox)
        sample.boxes.append(Box(label, x, y, x + w, y + h, origin=f"{where} ({label})", crowd=bool(entry.get("iscrowd", 0))))
    return list(samples.values()), [categories[i] for i in sorted(categories)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", type=Path, metavar="IMAGES", help="folder the json file_names are relative to")
    add_output_arguments(parser, default_name="images")
    parser.add_argument("--train", type=Path, default=None, metavar="JSON", help="COCO file of the train split")
    parser.add_argument("--test", type=Path, default=None, metavar="JSON", help="COCO file of the test split")
    parser.add_argument("--rename", type=rename_pair, action="append", default=[], metavar="OLD=NEW", help="rename a source category (repeatable)")
    parser.add_argument(
        "--classes", type=class_list, default=None,
        help="comma-separated class names to write, in category order (default: the source categories)",
    )
    add_split_arguments(parser, default_fraction=0.2, own_split=True)
    add_drop_empty_argument(parser)


def main(args: argparse.Namespace) -> int:
    report = Report("coco")
    if args.train is None and args.test is None:
        raise LCPError(f"{args.images}: give --train JSON and/or --test JSON")
    if not args.images.is_dir():
        raise LCPError(f"{args.images}: not a folder")
    check_output_free(args.out, [args.name], args.overwrite)
    renames = dict(args.rename)
    samples: list[Sample] = []
    source_classes: list[str] = []
    first_file: dict[Path, Path] = {}
    for split, path in (("train", args.train), ("test", args.test)):
        if path is None:
            continue
        file_samples, names = read_coco(path, split, args.images, renames)
        for sample in file_samples:
            key = sample.image.resolve()
            if key in first_file:
                raise LCPError(f"{path}: image {sample.image} is also listed in {first_file[key]}")
            first_file[key] = path
        samples += file_samples
        source_classes += names
    classes = args.classes or list(dict.fromkeys(source_classes))
    if not classes:
        raise LCPError(f"{args.train or args.test}: no categories, and no --classes given")
    for sample in samples:
        for box in sample.boxes:
            if box.label not in classes:
                report.count(f"annotation of category {box.label!r} (not in --classes), dropped")
        sample.boxes = [box for box in sample.boxes if box.label in classes]
    if wants_resplit(args):
        assign_splits(samples, args, report)
    write_image_set(
        samples, out=args.out, name=args.name, classes=classes, workers=args.workers,
        overwrite=args.overwrite, report=report, drop_empty=args.drop_empty,
        description=f"COCO {args.train or ''} {args.test or ''}".strip(),
    )
    report.print()
    return 0
