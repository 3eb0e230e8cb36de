"""`lcp data convert FORMAT ...`: one sub-command per source format (same contract as lcp/cli.py)."""

from __future__ import annotations

import argparse
import importlib

HELP = "convert a data set (URPC2020, Cityscapes, image folder, VOC, YOLO, COCO) into the scene layout"

FORMATS: dict[str, str] = {
    "urpc": "lcp.data.convert.urpc",
    "cityscapes": "lcp.data.convert.cityscapes",
    "folder": "lcp.data.convert.folder",
    "voc": "lcp.data.convert.voc",
    "yolo": "lcp.data.convert.yolo",
    "coco": "lcp.data.convert.coco",
}

EPILOG = """Every format writes OUT/NAME/*.jpg (one flat folder) and OUT/annotations/NAME_{train,test}.json
(COCO, categories 1..N in the class order), refuses to replace an existing set without
--overwrite, and prints counts of images, boxes per class and skipped items at the end."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    sub = parser.add_subparsers(dest="convert_format", required=True, metavar="FORMAT")
    for name, module_name in FORMATS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(
            name, help=module.HELP, description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(_main=module.main)


def main(args: argparse.Namespace) -> int:  # replaced by the chosen format's main
    raise AssertionError("unreachable: a format is required")
