"""`lcp data convert FORMAT ...`: convert a data set in one of these formats into the scene layout;
`lcp data convert FORMAT --help` gives each format's options."""

from __future__ import annotations

import argparse

HELP = "convert a data set (URPC2020, Cityscapes, image folder, VOC, YOLO, COCO) into the scene layout"

# format -> its command module (HELP, add_arguments, main); the conversion itself is lcp.data.convert.<format>
FORMATS: dict[str, str] = {
    "urpc": "lcp.commands.convert.urpc",
    "cityscapes": "lcp.commands.convert.cityscapes",
    "folder": "lcp.commands.convert.folder",
    "voc": "lcp.commands.convert.voc",
    "yolo": "lcp.commands.convert.yolo",
    "coco": "lcp.commands.convert.coco",
}

EPILOG = """Every format writes OUT/NAME/*.jpg (one flat folder) and OUT/annotations/NAME_{train,test}.json
(COCO, categories 1..N in the class order), refuses to replace an existing set without
--overwrite, and prints counts of images, boxes per class and skipped items at the end."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lcp.cli import add_subcommands

    parser.epilog = EPILOG
    add_subcommands(parser, FORMATS, dest="convert_format", metavar="FORMAT")


def main(args: argparse.Namespace) -> int:  # replaced by the chosen format's main
    raise AssertionError("unreachable: a format is required")
