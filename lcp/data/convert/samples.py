"""What a converter reads its source into: `Sample`s (one image, its split, its boxes), and the
one rule applied to their boxes before writing, --classes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lcp.data.convert.report import Report
from lcp.errors import LCPError


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
    """One source image, the split it belongs to and its boxes; `recorded_size` (width, height)
    is the size its annotation file states, where the format states one (`recorded_in` names
    that entry)."""

    image: Path
    split: str = "train"
    boxes: list[Box] = field(default_factory=list)
    recorded_size: tuple[int, int] | None = None
    recorded_in: str = ""


def boxes_by_class(samples: Sequence[Sample]) -> Counter:
    """Class name -> the boxes mmdet trains on (crowd, difficult and ignored ones aside)."""
    return Counter(box.label for sample in samples for box in sample.boxes if not box.crowd)


def keep_classes(
    samples: Sequence[Sample], classes: Sequence[str], report: Report, dropped: str, source: object
) -> None:
    """Drop the boxes of classes not in --classes, counted as "<dropped> 'name' (not in --classes)".

    A class without a box in the source (a mistyped --classes name, a category nobody
    labelled) is refused: it would become a class the detector never sees and the
    evaluation scores without ground truth. `source` (the annotation files or folder) is named
    in that refusal.
    """
    found = boxes_by_class(samples)
    empty = [name for name in classes if not found[name]]
    if empty and found:  # a source without any box (images to run a detector on) is not refused here
        which = f"class {empty[0]!r} has" if len(empty) == 1 else f"classes {', '.join(map(repr, empty))} have"
        raise LCPError(
            f"{source}: {which} no box (crowd, difficult and ignored boxes aside: mmdet trains on none); "
            f"the classes with boxes are {', '.join(sorted(found))}; choose among them with --classes (in the "
            "workflow: the scene's classes)"
        )
    for sample in samples:
        for box in sample.boxes:
            if box.label not in classes:
                report.count(f"{dropped} {box.label!r} (not in --classes), dropped")
        sample.boxes = [box for box in sample.boxes if box.label in classes]
