"""`lcp data convert yolo`; its description is the conversion's rules (lcp.data.convert.yolo)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lcp.commands.convert.options import (
    add_classes_argument,
    add_output_arguments,
    add_split_arguments,
    output_of,
    print_report,
    split_of,
)
from lcp.data.convert import yolo

__doc__ = yolo.__doc__  # `--help` shows the conversion's rules, which the library documents
HELP = "YOLO txt labels (class cx cy w h, normalised) + images (your own data)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "src",
        type=Path,
        metavar="SRC",
        help="YOLO folder (images/ + labels/, or labels beside the images, or images only with --labels)",
    )
    add_output_arguments(parser, default_name="images")
    parser.add_argument(
        "--labels",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of the label files, mirroring SRC (default: SRC/labels beside SRC/images, else SRC)",
    )
    parser.add_argument(
        "--names",
        type=Path,
        default=None,
        metavar="FILE",
        help="class names by id: a text file (one a line) or a data .yaml "
        "(default: classes.txt or data.yaml in SRC, then in the labels folder)",
    )
    add_classes_argument(
        parser,
        "comma-separated class names to write, picked by name, in category order (default: all names, in id order)",
    )
    add_split_arguments(parser, default_fraction=yolo.DEFAULT_TEST_FRACTION, own_split=True)


def main(args: argparse.Namespace) -> int:
    return print_report(
        yolo.convert(
            args.src,
            output_of(args),
            labels=args.labels,
            names=args.names,
            classes=args.classes,
            split=split_of(args),
            drop_empty=args.drop_empty,
        )
    )
