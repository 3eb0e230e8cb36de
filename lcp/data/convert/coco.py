"""COCO json + images: re-map categories to the configured classes, re-split, copy images flat.

IMAGES is the folder the `file_name`s of the json files are relative to (they may contain
sub-folders: the output is flat, names made unique as in `folder`).

Rules:
  * --train JSON and/or --test JSON: each file's images keep that split; --test-fraction or
    --test-list pool all images and re-split them.
  * --rename OLD=NEW renames a source category (two may be merged into one name);
    --classes fixes the written classes and their category order (ids 1..N); annotations
    of other categories are dropped and counted. Default: the source categories in id order.
  * iscrowd is kept, and an `ignore` flag (which mmdet honours like iscrowd) becomes
    iscrowd: 1; each must be 0 or 1 (or a boolean). Segmentation is not copied (boxes only); boxes reaching outside the
    image are clipped, boxes left without area dropped, both reported. Image sizes come
    from the decoded images, not from the json; a json size that differs is warned about,
    and refused where the image's EXIF orientation turns its stored pixels a quarter.
  * a missing image file, an image listed twice, an annotation naming an unknown image or
    category, or a malformed entry: error naming the json file and the entry.
  * images left with no box are kept unless --drop-empty; the evaluation scores them (a detection on one
    is a false positive), mmdet's training skips them (filter_empty_gt).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from numbers import Real
from pathlib import Path

from lcp.data.convert.image_set import begin, finish
from lcp.data.convert.output import Output
from lcp.data.convert.report import Report
from lcp.data.convert.samples import Box, Sample, keep_classes
from lcp.data.convert.splits import DEFAULT_SPLIT, Split
from lcp.errors import LCPError
from lcp.io import read_json

DEFAULT_TEST_FRACTION = 0.2


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


def _flag(entry: dict, key: str, where: str) -> bool:
    value = entry.get(key, 0)
    if not isinstance(value, Real) or value not in (0, 1):
        raise LCPError(f"{where}: `{key}` is {value!r}, expected 0 or 1")
    return bool(value)


def _recorded_size(entry: dict) -> tuple[int, int] | None:
    """The image entry's (width, height) when it states both as positive integers."""
    size = entry.get("width"), entry.get("height")
    valid = all(
        isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0 and v == int(v) for v in size
    )
    return (int(size[0]), int(size[1])) if valid else None


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
        # absolute, its folder resolved as the system resolves it (a ../ after a linked folder
        # climbs out of the link's target) and its own name kept: a file_name may be absolute or
        # climb out with ../, and the output names come from the paths below a common folder
        file_name = _field(entry, "file_name", str, where)
        if "\0" in file_name:  # os calls refuse it with a ValueError
            raise LCPError(f"{where}: `file_name` {file_name!r} holds a NUL character, which no file name can")
        given = images_root / file_name
        image = Path(os.path.realpath(given.parent)) / given.name
        if not image.is_file():
            raise LCPError(f"{where}: image file {image} not found")
        samples[image_id] = Sample(image, split, recorded_size=_recorded_size(entry), recorded_in=str(path))
    for where, entry in _numbered_entries(data, "annotations", path):
        sample = samples.get(_field(entry, "image_id", int, where))
        if sample is None:
            raise LCPError(f"{where}: image_id {entry['image_id']} is not in `images`")
        label = categories.get(_field(entry, "category_id", int, where))
        if label is None:
            raise LCPError(f"{where}: category_id {entry['category_id']} is not in `categories`")
        bbox = entry.get("bbox")
        numbers = isinstance(bbox, list) and all(isinstance(v, Real) and not isinstance(v, bool) for v in bbox)
        if not (numbers and len(bbox) == 4):
            raise LCPError(f"{where}: `bbox` is {bbox!r}, expected [x, y, width, height]")
        x, y, w, h = (float(v) for v in bbox)
        crowd = _flag(entry, "iscrowd", where) or _flag(entry, "ignore", where)
        sample.boxes.append(Box(label, x, y, x + w, y + h, origin=f"{where} ({label})", crowd=crowd))
    return list(samples.values()), [categories[i] for i in sorted(categories)]


def convert(
    images: Path,
    output: Output,
    *,
    train: Path | None = None,
    test: Path | None = None,
    renames: Iterable[tuple[str, str]] = (),
    classes: Sequence[str] | None = None,
    split: Split = DEFAULT_SPLIT,
    drop_empty: bool = False,
) -> Report:
    """Write the images of the COCO files `train` and/or `test` (file_names relative to
    `images`) as the image set `output`; `renames` are (old, new) category names, `classes`
    (default: the source categories in id order) the category order written."""
    if train is None and test is None:
        raise LCPError(f"{images}: give --train JSON and/or --test JSON")
    report = begin("coco", output, [images, train, test, split.test_list], source_folder=images)
    samples: list[Sample] = []
    source_classes: list[str] = []
    first_file: dict[Path, Path] = {}
    for split_name, path in (("train", train), ("test", test)):
        if path is None:
            continue
        file_samples, names = read_coco(path, split_name, images, dict(renames))
        for sample in file_samples:
            key = sample.image.resolve()
            if key in first_file:
                raise LCPError(f"{path}: image {sample.image} is also listed in {first_file[key]}")
            first_file[key] = path
        samples += file_samples
        source_classes += names
    classes = classes or list(dict.fromkeys(source_classes))
    if not classes:
        raise LCPError(f"{train or test}: no categories, and no --classes given")
    keep_classes(samples, classes, report, "annotation of category", " and ".join(str(p) for p in (train, test) if p))
    description = f"COCO {train or ''} {test or ''}".strip()
    return finish(
        samples,
        output,
        report,
        split=split,
        default_test_fraction=DEFAULT_TEST_FRACTION,
        classes=classes,
        description=description,
        own_split=True,
        drop_empty=drop_empty,
    )
