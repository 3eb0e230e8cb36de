"""The pipeline every converter shares.

A converter turns its source into `Sample`s (image path, split, boxes with class names) and
hands them to `write_image_set`, which
  1. names the images flat and uniquely (`flat_names`),
  2. decodes every image and writes it as .jpg into a staging folder, in parallel
     (JPEG sources are copied byte for byte, others are encoded at quality 95),
  3. clips the boxes to the decoded image size and drops the ones left without area,
  4. builds one COCO dict per split with categories 1..N in the configured class order,
  5. renames the staging folder and the json files into place, so a reader never sees a
     half-written image set.
A `Report` gathers counts and warnings along the way and prints the summary at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lcp.errors import LCPError
from lcp.io import (
    MARKER,
    MARKER_TEXT,
    check_folder_output,
    check_outside_sources,
    is_lcp_folder,
    replace_folder,
    temp_folder,
    write_json,
)
from lcp.progress import progress

SPLITS = ("train", "test")
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
JPEG_QUALITY = 95
WARNINGS_SHOWN_PER_REASON = 5


@dataclass
class Box:
    """One object as corners in source pixels, or in 0..1 of the image size when `relative`.

    `origin` names the object in messages, e.g. "a/b.xml: object 3 (starfish)". Crowd boxes
    (Cityscapes groups, VOC difficult objects) become COCO `iscrowd: 1`, which mmdet's
    CocoDataset turns into ignored boxes and COCOeval into ignore regions.
    """

    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    origin: str
    crowd: bool = False
    relative: bool = False


@dataclass
class Sample:
    """One source image, the split it belongs to and its boxes."""

    image: Path
    split: str = "train"
    boxes: list[Box] = field(default_factory=list)


class Report:
    """What a conversion wrote, adjusted and skipped, printed as a summary at the end.

    `warn` is for items that may be a problem in the data (printed with their name, the
    first few per reason); `count` is for what a documented rule drops as expected.
    """

    def __init__(self, command: str):
        self.command = command
        self.events: Counter[str] = Counter()
        self.sections: list[str] = []

    def warn(self, reason: str, where: str | os.PathLike) -> None:
        self.events[reason] += 1
        if self.events[reason] <= WARNINGS_SHOWN_PER_REASON:
            print(f"warning: {where}: {reason}", file=sys.stderr)

    def count(self, reason: str, n: int = 1) -> None:
        if n:
            self.events[reason] += n

    def add_section(self, text: str) -> None:
        self.sections.append(text)

    def render(self) -> str:
        lines = [f"lcp data convert {self.command}: done"]
        lines += self.sections
        if self.events:
            lines.append("skipped or adjusted:")
            width = len(str(max(self.events.values())))
            lines += [f"  {n:>{width}}  {reason}" for reason, n in sorted(self.events.items())]
        else:
            lines.append("nothing skipped or adjusted")
        return "\n".join(lines)

    def print(self) -> None:
        print(self.render())


# ---------------------------------------------------------------------------------------
# Command-line pieces shared by the converters


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def class_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"empty class name in {text!r}")
    duplicates = sorted(name for name, n in Counter(names).items() if n > 1)
    if duplicates:
        raise argparse.ArgumentTypeError(f"class listed twice: {', '.join(duplicates)}")
    return names


def add_output_arguments(parser: argparse.ArgumentParser, default_name: str | None) -> None:
    """OUT, --name (when the format writes a single image set), --workers, --overwrite."""
    parser.add_argument(
        "out", type=Path, metavar="OUT",
        help="scene folder to write into: OUT/NAME/*.jpg and OUT/annotations/NAME_{train,test}.json",
    )
    if default_name is not None:
        parser.add_argument(
            "--name", default=default_name,
            help="image set name: the image folder below OUT and the json prefix (default: %(default)s)",
        )
    parser.add_argument(
        "--workers", type=positive_int, default=min(8, os.cpu_count() or 1),
        help="processes decoding and encoding images (default: %(default)s)",
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace an existing image set of the same name (default: refuse)",
    )


def add_classes_argument(parser: argparse.ArgumentParser, help: str, default: list[str] | None = None) -> None:
    parser.add_argument("--classes", type=class_list, default=default, help=help)


def add_split_arguments(
    parser: argparse.ArgumentParser, default_fraction: float, own_split: bool, drop_empty: bool = True
) -> None:
    """--test-fraction / --seed / --test-list (for sources with their own split these re-split),
    then --drop-empty unless the format has no boxes to leave an image empty."""
    when = "re-split the whole set instead of keeping the data set's own split: " if own_split else ""
    default = "the data set's own split" if own_split else default_fraction
    parser.add_argument(
        "--test-fraction", type=fraction, default=None,
        help=f"{when}share of images put in the test split, drawn with --seed (default: {default})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the test split draw (default: 0)")
    parser.add_argument(
        "--test-list", type=Path, default=None,
        help=f"{when}text file of image names (stems), one a line, that form the test split; "
        "all others are train (e.g. VOC's ImageSets/Main/test.txt)",
    )
    parser.set_defaults(default_test_fraction=default_fraction)
    if drop_empty:
        add_drop_empty_argument(parser)
    else:
        parser.set_defaults(drop_empty=False)


def add_drop_empty_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--drop-empty", action="store_true",
        help="drop images left with no box (default: keep them as negatives)",
    )


def wants_resplit(args: argparse.Namespace) -> bool:
    return args.test_fraction is not None or args.test_list is not None


def keep_classes(samples: Sequence[Sample], classes: Sequence[str], report: Report, dropped: str) -> None:
    """Drop the boxes of classes not in --classes, counted as "<dropped> 'name' (not in --classes)".

    A class without a box in the source (a mistyped --classes name, a category nobody
    labelled) is refused: it would become a class the detector never sees and the
    evaluation scores without ground truth.
    """
    found = Counter(box.label for sample in samples for box in sample.boxes)
    empty = [name for name in classes if not found[name]]
    if empty and found:  # a source without any box (images to run a detector on) is not refused here
        which = f"class {empty[0]!r} has" if len(empty) == 1 else f"classes {', '.join(map(repr, empty))} have"
        raise LCPError(f"{which} no box in the source; the classes with boxes are {', '.join(sorted(found))} "
                       "(choose among them with --classes)")
    for sample in samples:
        for box in sample.boxes:
            if box.label not in classes:
                report.count(f"{dropped} {box.label!r} (not in --classes), dropped")
        sample.boxes = [box for box in sample.boxes if box.label in classes]


def assign_splits(samples: Sequence[Sample], args: argparse.Namespace, report: Report) -> None:
    """Set every sample's split from --test-list, else a seeded --test-fraction draw."""
    if args.test_list is not None:
        split_by_list(samples, args.test_list, report)
    else:
        share = args.test_fraction if args.test_fraction is not None else args.default_test_fraction
        split_by_fraction(samples, share, args.seed)


def split_by_fraction(samples: Sequence[Sample], test_fraction: float, seed: int) -> None:
    """A seeded draw of round(n * test_fraction) test images, independent of listing order.

    The draw orders images by file stem, so two sets with the same stems (URPC2020 and its
    enhanced twin DFUI) get the same split from the same seed and fraction.
    """
    order = sorted(range(len(samples)), key=lambda i: (samples[i].image.stem, samples[i].image.as_posix()))
    random.Random(seed).shuffle(order)
    test = set(order[: round(len(samples) * test_fraction)])
    for i, sample in enumerate(samples):
        sample.split = "test" if i in test else "train"


def image_stem(name: str) -> str:
    path = Path(name.strip())
    return path.stem if path.suffix.lower() in IMAGE_EXTENSIONS else path.name


def split_by_list(samples: Sequence[Sample], list_file: Path, report: Report) -> None:
    try:
        lines = list_file.read_text().splitlines()
    except OSError as exc:
        raise LCPError(f"{list_file}: cannot read the test list ({exc.strerror})") from None
    wanted = {image_stem(line) for line in lines if line.strip() and not line.lstrip().startswith("#")}
    found = set()
    for sample in samples:
        stem = sample.image.stem
        sample.split = "test" if stem in wanted else "train"
        found.add(stem)
    for stem in sorted(wanted - found):
        report.warn("test-list entry matches no converted image, ignored", f"{list_file}: {stem}")


# ---------------------------------------------------------------------------------------
# Finding files


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def walk_files(root: Path) -> list[Path]:
    """All regular files below `root`, sorted, skipping hidden files and folders."""
    if not root.is_dir():
        raise LCPError(f"{root}: not a folder")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in files if not f.startswith(".")]
    return sorted(found)


def flat_names(paths: Sequence[Path]) -> list[str]:
    """Unique flat .jpg names for `paths`, also on case-insensitive file systems.

    A file keeps its stem unless another file shares it (ignoring case); then each file of
    that group is named after its path below the common folder, folders joined with '__'
    and the extension kept as '_ext' (a/x.png -> a__x_png.jpg). The result depends only on
    the set of paths, not on their listing order.
    """
    if not paths:
        return []
    root = Path(os.path.commonpath([p.parent for p in paths]))
    relative = [p.relative_to(root) for p in paths]
    stems = Counter(r.stem.lower() for r in relative)
    candidates = []
    for r in relative:
        if stems[r.stem.lower()] == 1:
            candidates.append(r.stem)
        else:
            candidates.append("__".join([*r.parent.parts, f"{r.stem}_{r.suffix.lstrip('.').lower()}"]))
    # a derived name can still meet another file's stem (or differ from it only in case)
    used: set[str] = set()
    names = [""] * len(paths)
    for i in sorted(range(len(paths)), key=lambda i: relative[i].as_posix()):
        name, n = candidates[i], 1
        while name.lower() in used:
            n += 1
            name = f"{candidates[i]}_{n}"
        used.add(name.lower())
        names[i] = name + ".jpg"
    return names


# ---------------------------------------------------------------------------------------
# Parallel decode / encode


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # the pool already runs one process per core


def transcode_image(job: tuple[str, str]) -> tuple[int, int] | str:
    """Decode `src`, write it to `dst` as JPEG; return (width, height) or what went wrong."""
    import cv2
    import numpy as np

    src, dst = job
    try:
        data = Path(src).read_bytes()
    except OSError as exc:
        return f"cannot read the image ({exc.strerror})"
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error:
        image = None
    if image is None:
        return "not a readable image (decoding failed)"
    if data[:3] == b"\xff\xd8\xff":
        Path(dst).write_bytes(data)  # already JPEG: a second lossy encoding would only lose detail
    else:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            return "could not be encoded as JPEG"
        Path(dst).write_bytes(encoded.tobytes())
    height, width = image.shape[:2]
    return width, height


def parallel_map(fn: Callable, items: Sequence, workers: int, desc: str) -> list:
    """fn over items in order, in `workers` processes, with its progress (lcp.progress: a bar in
    a terminal, a line every few seconds in a job log)."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in progress(items, total=len(items), desc=desc)]
    workers = min(workers, len(items))
    chunksize = max(1, min(16, len(items) // (workers * 4)))
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
        return list(progress(pool.map(fn, items, chunksize=chunksize), total=len(items), desc=desc))


# ---------------------------------------------------------------------------------------
# Writing one image set


def check_name(name: str) -> None:
    if not name or name in {".", "..", "annotations"} or name.startswith(".") or "/" in name or "\\" in name:
        raise LCPError(f"{name!r}: not usable as an image set name (a plain folder name, not 'annotations')")


def output_paths(out: Path, name: str) -> list[Path]:
    return [out / name] + [out / "annotations" / f"{name}_{split}.json" for split in SPLITS]


def source_paths(args: argparse.Namespace) -> list[Path]:
    """Every path a converter reads: its Path arguments other than OUT."""
    return [value for key, value in vars(args).items() if key != "out" and isinstance(value, Path)]


def check_output_free(out: Path, names: Iterable[str], overwrite: bool, sources: Iterable[Path] = ()) -> None:
    """Refuse before any work an image set that would touch a source, replace what lcp did
    not write, or replace anything without --overwrite. The json files go with the folder:
    they are replaced only beside an image set folder lcp wrote."""
    if out.exists() and not out.is_dir():
        raise LCPError(f"{out}: exists and is not a folder")
    sources = list(sources)
    for name in names:
        check_name(name)
        folder, *jsons = output_paths(out, name)
        check_folder_output(folder, overwrite, sources)
        for path in jsons:
            check_outside_sources(path, sources)
            if not path.exists():
                continue
            if not is_lcp_folder(folder):
                raise LCPError(f"{path}: already exists beside no image set lcp wrote ({folder} has no {MARKER}), "
                               "so even --overwrite does not replace it; remove it by hand or choose another name")
            if not overwrite:
                raise LCPError(f"{path}: already exists; remove it or pass --overwrite")


def _coco_box(box: Box, width: int, height: int, name: str, report: Report) -> list[float] | None:
    x1, y1, x2, y2 = box.x1, box.y1, box.x2, box.y2
    if box.relative:
        x1, x2, y1, y2 = x1 * width, x2 * width, y1 * height, y2 * height
    if not (x2 > x1 and y2 > y1):
        report.warn("box without area (max <= min), dropped", box.origin)
        return None
    cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
    where = f"{box.origin} (image {width}x{height})"
    if not (cx2 > cx1 and cy2 > cy1):
        report.warn(f"{name}: box entirely outside the image, dropped", where)
        return None
    if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
        report.warn(f"{name}: box outside the image, clipped to it", where)
    return [round(cx1, 2), round(cy1, 2), round(cx2 - cx1, 2), round(cy2 - cy1, 2)]


def write_image_set(
    samples: Sequence[Sample],
    *,
    out: Path,
    name: str,
    classes: Sequence[str],
    workers: int,
    overwrite: bool,
    report: Report,
    drop_empty: bool = False,
    description: str = "",
) -> dict[str, dict]:
    """Write OUT/NAME/*.jpg and OUT/annotations/NAME_<split>.json; return the COCO dicts by split."""
    check_output_free(out, [name], overwrite, {sample.image.parent for sample in samples})
    if not samples:
        raise LCPError(f"{out / name}: no images to write (nothing usable was found in the source)")
    category_ids = {label: i + 1 for i, label in enumerate(classes)}
    for sample in samples:
        for box in sample.boxes:
            if box.label not in category_ids:
                raise LCPError(f"{box.origin}: class {box.label!r} is not one of {', '.join(classes)}")

    samples = sorted(samples, key=lambda s: s.image.as_posix())
    file_names = flat_names([s.image for s in samples])
    out.mkdir(parents=True, exist_ok=True)
    staging = temp_folder(out / name)
    try:
        (staging / name).mkdir()
        jobs = [(str(s.image), str(staging / name / f)) for s, f in zip(samples, file_names)]
        sizes = parallel_map(transcode_image, jobs, workers, desc=f"convert {name}")
        for sample, size in zip(samples, sizes):
            if isinstance(size, str):
                raise LCPError(f"{sample.image}: {size}")

        categories = [{"id": i, "name": label, "supercategory": "object"} for label, i in category_ids.items()]
        info = {
            "description": description or name,
            "converted_by": f"lcp data convert {report.command}",
        }
        cocos = {
            split: {"info": info, "licenses": [], "images": [], "annotations": [], "categories": categories}
            for split in SPLITS
        }
        image_counts: Counter[str] = Counter()
        negatives: Counter[str] = Counter()
        box_counts: dict[str, Counter[str]] = defaultdict(Counter)
        crowd_counts: dict[str, Counter[str]] = defaultdict(Counter)
        image_id = annotation_id = 0
        for sample, file_name, (width, height) in zip(samples, file_names, sizes):
            kept = [(box, coco_box) for box in sample.boxes
                    if (coco_box := _coco_box(box, width, height, name, report)) is not None]
            if not kept and drop_empty:
                report.warn("image with no box left, dropped (--drop-empty)", sample.image)
                (staging / name / file_name).unlink()
                continue
            coco = cocos[sample.split]
            image_id += 1
            coco["images"].append({"id": image_id, "file_name": file_name, "width": width, "height": height})
            image_counts[sample.split] += 1
            negatives[sample.split] += not kept
            for box, (x, y, w, h) in kept:
                annotation_id += 1
                coco["annotations"].append({
                    "id": annotation_id, "image_id": image_id, "category_id": category_ids[box.label],
                    "bbox": [x, y, w, h], "area": round(w * h, 2), "iscrowd": int(box.crowd),
                })
                (crowd_counts if box.crowd else box_counts)[box.label][sample.split] += 1
        if not image_id:
            raise LCPError(f"{out / name}: no images left to write (all dropped; see the warnings)")
        source_boxes = sum(len(sample.boxes) for sample in samples)
        if source_boxes and not annotation_id:
            raise LCPError(f"{out / name}: all {source_boxes} boxes of the source were dropped (see the warnings); "
                           "a set without boxes has nothing to train or evaluate on")

        written = [split for split in SPLITS if image_counts[split]]
        for split in written:
            write_json(staging / "annotations" / f"{name}_{split}.json", cocos[split])
        _publish(staging, out, name, written)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    report.add_section(
        _summary(out, name, classes, written, image_counts, negatives, box_counts, crowd_counts)
    )
    return {split: cocos[split] for split in written}


def _publish(staging: Path, out: Path, name: str, splits: list[str]) -> None:
    """Move the staged image folder (marked as lcp's) and json files into place, replacing an older set."""
    (staging / name / MARKER).write_text(MARKER_TEXT)
    annotations = out / "annotations"
    annotations.mkdir(exist_ok=True)
    replace_folder(staging / name, out / name)
    for split in SPLITS:
        json_path = annotations / f"{name}_{split}.json"
        if split in splits:
            os.replace(staging / "annotations" / json_path.name, json_path)
        else:
            json_path.unlink(missing_ok=True)  # a split the replaced set had and the new one lacks


def _summary(out, name, classes, splits, image_counts, negatives, box_counts, crowd_counts) -> str:
    jsons = ", ".join(str(out / "annotations" / f"{name}_{split}.json") for split in splits)
    lines = [f"{out / name}: {sum(image_counts.values())} images -> {jsons}"]
    rows = [("images", image_counts)]
    rows += [(f"{label} boxes", box_counts[label]) for label in classes]
    rows += [(f"{label} crowd/ignore boxes", crowd_counts[label]) for label in classes if crowd_counts[label]]
    rows.append(("images without a box", negatives))
    width = max(len(label) for label, _ in rows) + 2
    lines.append("  " + "".ljust(width) + "".join(f"{split:>8}" for split in SPLITS))
    for label, counts in rows:
        lines.append("  " + label.ljust(width) + "".join(f"{counts[split]:>8}" for split in SPLITS))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# The two ends every single-set converter's main shares


def start_conversion(command: str, args: argparse.Namespace, source: Path | None = None) -> Report:
    """Refuse a `source` that is not a folder, or an output that is taken, before any work."""
    if source is not None and not source.is_dir():
        raise LCPError(f"{source}: not a folder")
    check_output_free(args.out, [args.name], args.overwrite, source_paths(args))
    return Report(command)


def finish_conversion(
    samples: Sequence[Sample],
    args: argparse.Namespace,
    report: Report,
    *,
    classes: Sequence[str],
    description: str,
    own_split: bool = False,
) -> int:
    """Split (unless the samples carry the source's own split and no re-split was asked for),
    write OUT/NAME with the options of add_output_arguments and add_split_arguments, print
    the summary; the command's exit status."""
    if not own_split or wants_resplit(args):
        assign_splits(samples, args, report)
    write_image_set(
        samples, out=args.out, name=args.name, classes=classes, workers=args.workers,
        overwrite=args.overwrite, report=report, drop_empty=args.drop_empty, description=description,
    )
    report.print()
    return 0
