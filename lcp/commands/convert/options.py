"""The options the formats of `lcp data convert` share, and the typed values they become."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lcp.commands.arguments import class_list, fraction, positive_int
from lcp.data.convert.output import Output
from lcp.data.convert.report import Report
from lcp.data.convert.splits import Split


def add_output_arguments(parser: argparse.ArgumentParser, default_name: str | None) -> None:
    """OUT, --name (when the format writes a single image set), --workers, --overwrite."""
    parser.add_argument(
        "out",
        type=Path,
        metavar="OUT",
        help="scene folder to write into: OUT/NAME/*.jpg and OUT/annotations/NAME_{train,test}.json",
    )
    if default_name is not None:
        parser.add_argument(
            "--name",
            default=default_name,
            help="image set name: the image folder below OUT and the json prefix (default: %(default)s)",
        )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=min(8, os.cpu_count() or 1),
        help="processes decoding and encoding images (default: %(default)s)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
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
        "--test-fraction",
        type=fraction,
        default=None,
        help=f"{when}share of images put in the test split, each stem drawn on its own with --seed, so a stem "
        f"gets the same split in every set that holds it (default: {default})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the test split draw (default: 0)")
    parser.add_argument(
        "--test-list",
        type=Path,
        default=None,
        help=f"{when}text file of image names (stems), one a line, that form the test split; "
        "all others are train (e.g. VOC's ImageSets/Main/test.txt)",
    )
    if drop_empty:
        add_drop_empty_argument(parser)


def add_drop_empty_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--drop-empty",
        action="store_true",
        help="drop images left with no box (default: keep them as negatives)",
    )


def output_of(args: argparse.Namespace, name: str | None = None) -> Output:
    """The image set of OUT, --name (or `name`), --workers and --overwrite."""
    return Output(args.out, name or args.name, args.workers, args.overwrite)


def split_of(args: argparse.Namespace) -> Split:
    return Split(args.test_fraction, args.seed, args.test_list)


def print_report(report: Report) -> int:
    """Print the conversion's summary; the command's exit status."""
    print(report.render())
    return 0
