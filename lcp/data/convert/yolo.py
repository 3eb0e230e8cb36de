"""YOLO: one .txt per image, a line `class cx cy w h` per box (class index, the rest in 0..1).

Layout: SRC/images/... with SRC/labels/... mirroring it (images/a/b.jpg -> labels/a/b.txt),
or the .txt files beside the images when SRC has no images/ and labels/ folders.

Rules:
  * class names, by index: --names FILE (one name a line, or a YOLO data .yaml with
    `names:`), else SRC/classes.txt or SRC/data.yaml, else --classes.
  * --classes fixes the written classes and their category order; boxes of other names are
    dropped and counted. Default: all names, in index order.
  * a line that is not 5 numbers, a class index outside the names, or a coordinate above 1
    (pixel coordinates, not YOLO's normalised ones): error naming file:line.
  * boxes reaching outside the image are clipped, boxes left without area dropped, both
    reported.
  * an image without a label file has no objects (YOLO's convention) and is kept as a
    negative unless --drop-empty; a label file without an image is an error.
  * split: the first folder below images/ when it is train (-> train), or val, valid, test
    (-> test); without such folders a seeded --test-fraction draw (default 0.2).
    --test-fraction or --test-list re-split a set that has split folders.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lcp.data.convert.common import (
    Box,
    Report,
    Sample,
    add_classes_argument,
    add_output_arguments,
    add_split_arguments,
    finish_conversion,
    is_image_file,
    keep_classes,
    start_conversion,
    walk_files,
    wants_resplit,
)
from lcp.errors import LCPError

HELP = "YOLO txt labels (class cx cy w h, normalised) + images (your own data)"
# Normalised coordinates are at most 1; the slack absorbs label writers' float rounding. A
# larger value means pixel coordinates, whose boxes would all land outside the image.
MAX_NORMALISED = 1.0 + 1e-6
SPLIT_OF_FOLDER = {"train": "train", "val": "test", "valid": "test", "test": "test"}
NAMES_FILES = ("classes.txt", "data.yaml")


def read_names(path: Path) -> list[str]:
    """Class names by index from a names file (one a line) or a YOLO data .yaml (`names:`)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise LCPError(f"{path}: cannot read the names file ({exc.strerror})") from None
    if path.suffix.lower() in {".yaml", ".yml"}:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise LCPError(f"{path}: not valid YAML ({exc})") from None
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, dict) and all(isinstance(k, int) for k in names):
            if sorted(names) != list(range(len(names))):
                raise LCPError(f"{path}: `names` indices must be 0..{len(names) - 1}")
            names = [names[i] for i in range(len(names))]
        if not isinstance(names, list) or not names:
            raise LCPError(f"{path}: no `names:` list (or index: name mapping)")
        names = [str(name).strip() for name in names]
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise LCPError(f"{path}: no class names")
    return names


def parse_label_file(path: Path, names: list[str]) -> list[Box]:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LCPError(f"{path}: cannot read the label file ({exc})") from None
    boxes = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{number}"
        if len(fields) != 5:
            raise LCPError(f"{where}: expected 'class cx cy w h' (5 numbers), got {len(fields)} fields")
        try:
            index_value, cx, cy, w, h = (float(field) for field in fields)
        except ValueError:
            raise LCPError(f"{where}: not numbers: {line.strip()!r}") from None
        if not index_value.is_integer() or not 0 <= index_value < len(names):
            raise LCPError(f"{where}: class index {fields[0]} is not one of 0..{len(names) - 1} ({len(names)} names)")
        if max(cx, cy, w, h) > MAX_NORMALISED:
            raise LCPError(f"{where}: cx cy w h {' '.join(fields[1:])} are not normalised to 0..1; YOLO labels give "
                           "them as fractions of the image width and height (pixel coordinates? divide by the size)")
        label = names[int(index_value)]
        boxes.append(Box(label, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, origin=f"{where} ({label})", relative=True))
    return boxes


def resolve_names(args: argparse.Namespace) -> list[str]:
    # The source's own names file comes before --classes, which then picks and orders among
    # its names: --classes in another order reorders the categories instead of renaming the
    # boxes, and a mistyped name is an error instead of a class without boxes.
    if args.names is not None:
        return read_names(args.names)
    for candidate in NAMES_FILES:
        if (args.src / candidate).is_file():
            return read_names(args.src / candidate)
    if args.classes is not None:
        return list(args.classes)
    raise LCPError(f"{args.src}: class names unknown: give --names FILE or --classes, or put classes.txt in it")


def collect(src: Path, names: list[str], names_file: Path | None, report: Report) -> tuple[list[Sample], bool]:
    """Samples with their boxes, and whether the source has its own split folders."""
    separate = (src / "images").is_dir() and (src / "labels").is_dir()
    images_root = src / "images" if separate else src
    labels_root = src / "labels" if separate else src
    samples = []
    used_labels = {names_file.resolve()} if names_file is not None else set()
    for path in walk_files(images_root):
        if not is_image_file(path):
            if not (path.suffix.lower() == ".txt" and not separate) and path.name not in NAMES_FILES:
                report.warn("not an image file (by its extension), skipped", path)
            continue
        relative = path.relative_to(images_root)
        label = labels_root / relative.with_suffix(".txt")
        folder = relative.parts[0].lower() if len(relative.parts) > 1 else ""
        sample = Sample(path, SPLIT_OF_FOLDER.get(folder, ""))
        if label.is_file():
            sample.boxes = parse_label_file(label, names)
            used_labels.add(label.resolve())
        else:
            report.count("image without a label file (no objects)")
        samples.append(sample)
    for path in walk_files(labels_root):
        if path.suffix.lower() == ".txt" and path.resolve() not in used_labels and path.name not in NAMES_FILES:
            raise LCPError(f"{path}: label file without an image (looked for {images_root}/{path.relative_to(labels_root).with_suffix('')}.<jpg|png|...>)")
    own_split = any(sample.split for sample in samples)
    return samples, own_split


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", type=Path, metavar="SRC", help="YOLO folder (images/ + labels/, or labels beside the images)")
    add_output_arguments(parser, default_name="images")
    parser.add_argument("--names", type=Path, default=None, metavar="FILE", help="class names by index: a text file (one a line) or a data .yaml")
    add_classes_argument(parser, "comma-separated class names to write, in category order (default: all names)")
    add_split_arguments(parser, default_fraction=0.2, own_split=True)


def main(args: argparse.Namespace) -> int:
    report = start_conversion("yolo", args, args.src)
    names = resolve_names(args)
    classes = args.classes or list(dict.fromkeys(names))
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise LCPError(f"--classes: {', '.join(unknown)} not among the names ({', '.join(names)})")
    samples, own_split = collect(args.src, names, args.names, report)
    if own_split and not wants_resplit(args):
        for sample in samples:
            if not sample.split:
                report.warn("image outside the train/val/test folders, skipped", sample.image)
        samples = [sample for sample in samples if sample.split]
    keep_classes(samples, classes, report, dropped="box of class")
    return finish_conversion(
        samples, args, report, classes=classes, description=f"YOLO {args.src}", own_split=own_split
    )
