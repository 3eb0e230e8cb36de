"""`lcp data convert coco`; its description is the conversion's rules (lcp.data.convert.coco)."""

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
from lcp.data.convert import coco

__doc__ = coco.__doc__  # `--help` shows the conversion's rules, which the library documents
HELP = "COCO json + images: re-map categories, re-split, copy images flat (your own data)"


def rename_pair(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old.strip() or not new.strip():
        raise argparse.ArgumentTypeError(f"expected OLD=NEW, got {text!r}")
    return old.strip(), new.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", type=Path, metavar="IMAGES", help="folder the json file_names are relative to")
    add_output_arguments(parser, default_name="images")
    parser.add_argument("--train", type=Path, default=None, metavar="JSON", help="COCO file of the train split")
    parser.add_argument("--test", type=Path, default=None, metavar="JSON", help="COCO file of the test split")
    parser.add_argument(
        "--rename",
        type=rename_pair,
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="rename a source category (repeatable)",
    )
    add_classes_argument(
        parser, "comma-separated class names to write, in category order (default: the source categories)"
    )
    add_split_arguments(parser, default_fraction=coco.DEFAULT_TEST_FRACTION, own_split=True)


def main(args: argparse.Namespace) -> int:
    return print_report(
        coco.convert(
            args.images,
            output_of(args),
            train=args.train,
            test=args.test,
            renames=args.rename,
            classes=args.classes,
            split=split_of(args),
            drop_empty=args.drop_empty,
        )
    )
