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
    Sample,
    add_classes_argument,
    add_output_arguments,
    add_split_arguments,
    finish_conversion,
    keep_classes,
    start_conversion,
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


def _numbered_entries(data: dict, key: str, path: Path) -> list[tuple[str, dict]]:
    """The entries of `key`, each with where it stands for messages ("PATH: key[i]")."""
    return [(f"{path}: {key}[{i}]", entry) for i, entry in enumerate(_entries(data, key, path))]


def _new_id(entry: dict, where: str, seen: dict, what: str) -> int:
    """The entry's `id`, refused when an earlier entry of `seen` has it."""
    entry_id = _field(entry, "id", int, where)
    if entry_id in seen:
        raise LCPError(f"{where}: {what} id {entry_id} appears twice")
    return entry_id


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
    for where, entry in _numbered_entries(data, "categories", path):
        category_id = _new_id(entry, where, categories, "category")
        name = _field(entry, "name", str, where)
        categories[category_id] = renames.get(name, name)
    samples: dict[int, Sample] = {}
    for where, entry in _numbered_entries(data, "images", path):
        image_id = _new_id(entry, where, samples, "image")
        image = images_root / _field(entry, "file_name", str, where)
        if not image.is_file():
            raise LCPError(f"{where}: image file {image} not found")
        samples[image_id] = Sample(image, split)
    for where, entry in _numbered_entries(data, "annotations", path):
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
    add_classes_argument(parser, "comma-separated class names to write, in category order (default: the source categories)")
    add_split_arguments(parser, default_fraction=0.2, own_split=True)


def main(args: argparse.Namespace) -> int:
    if args.train is None and args.test is None:
        raise LCPError(f"{args.images}: give --train JSON and/or --test JSON")
    report = start_conversion("coco", args, args.images)
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
    keep_classes(samples, classes, report, dropped="annotation of category")
    description = f"COCO {args.train or ''} {args.test or ''}".strip()
    return finish_conversion(samples, args, report, classes=classes, description=description, own_split=True)
