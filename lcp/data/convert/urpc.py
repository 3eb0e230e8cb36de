"""URPC2020 underwater images with Pascal VOC xml boxes.

SRC is searched for images and xml files anywhere below it (the release's train/image and
train/box both fit); they are paired by file stem because the xml <filename> does not
always name the real image file.

Rules:
  * classes are fixed, in this category order: echinus, holothurian, scallop, starfish.
  * waterweed boxes are dropped and counted (the detection benchmark has four classes);
    any other class name is an error naming the xml file.
  * boxes reaching outside the decoded image are clipped (boxes left without area are
    dropped), and both are reported; the xml <size> is not trusted.
  * images left with no box (e.g. only waterweed) are kept as negatives unless --drop-empty.
  * an xml whose image is missing, or an unreadable xml or image: error naming the file.
    An image without an xml (e.g. the unlabelled test images) is skipped with a warning.
  * URPC2020 publishes no labelled test split: a seeded --test-fraction draw (default 0.2)
    or --test-list decides it.
Output: OUT/NAME/*.jpg and OUT/annotations/NAME_{train,test}.json (NAME: urpc by default;
--name dfui converts DFUI, which comes in the same format). With the same seed and
fraction, DFUI gets the same split as URPC2020 when both hold the same image stems.
"""

from __future__ import annotations

import argparse

from lcp.data.convert.common import (
    Sample,
    add_output_arguments,
    add_split_arguments,
    finish_conversion,
    start_conversion,
)
from lcp.data.convert.voc import add_source_arguments, pair_by_stem, parse_voc_xml, source_folders
from lcp.errors import LCPError

HELP = "URPC2020 underwater data set (VOC xml; echinus, holothurian, scallop, starfish)"
CLASSES = ("echinus", "holothurian", "scallop", "starfish")
DROPPED_CLASSES = frozenset({"waterweed"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser, "URPC2020")
    add_output_arguments(parser, default_name="urpc")
    add_split_arguments(parser, default_fraction=0.2, own_split=False)


def main(args: argparse.Namespace) -> int:
    images_root, annotations_root = source_folders(args)
    report = start_conversion("urpc", args)
    samples = []
    for image, xml in pair_by_stem(images_root, annotations_root, report):
        boxes = []
        for box in parse_voc_xml(xml):
            if box.label in DROPPED_CLASSES:
                report.warn(f"{box.label} box, dropped (URPC rule)", box.origin)
            elif box.label in CLASSES:
                boxes.append(box)
            else:
                raise LCPError(f"{box.origin}: unknown class {box.label!r}; URPC2020 has {', '.join(CLASSES)} (and waterweed, dropped)")
        samples.append(Sample(image, boxes=boxes))
    return finish_conversion(samples, args, report, classes=CLASSES, description=f"URPC2020 {args.src}")
