"""`lcp data convert voc`; its description is the conversion's rules (lcp.data.convert.voc)."""

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
from lcp.data.convert import voc

__doc__ = voc.__doc__  # `--help` shows the conversion's rules, which the library documents
HELP = "Pascal VOC xml boxes + images (your own data)"


def add_source_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("src", type=Path, metavar="SRC", help=f"{what} folder")
    parser.add_argument("--images", type=Path, default=None, help="folder searched for images (default: see above)")
    parser.add_argument(
        "--annotations", type=Path, default=None, help="folder searched for xml files (default: see above)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser, "VOC")
    add_output_arguments(parser, default_name="images")
    add_classes_argument(
        parser, "comma-separated class names in category order; other classes are dropped (default: all found, sorted)"
    )
    add_split_arguments(parser, default_fraction=voc.DEFAULT_TEST_FRACTION, own_split=False)


def main(args: argparse.Namespace) -> int:
    return print_report(
        voc.convert(
            args.src,
            output_of(args),
            classes=args.classes,
            split=split_of(args),
            images=args.images,
            annotations=args.annotations,
            drop_empty=args.drop_empty,
        )
    )
