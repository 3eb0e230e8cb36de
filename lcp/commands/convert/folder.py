"""`lcp data convert folder`; its description is the conversion's rules (lcp.data.convert.folder)."""

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
from lcp.data.convert import folder

__doc__ = folder.__doc__  # `--help` shows the conversion's rules, which the library documents
HELP = "a folder of images without annotations (detection-favoured sets such as DFUI)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", type=Path, metavar="SRC", help="folder searched recursively for images")
    add_output_arguments(parser, default_name="images")
    add_classes_argument(parser, "comma-separated categories to list in the json (default: none)", default=[])
    add_split_arguments(parser, default_fraction=folder.DEFAULT_TEST_FRACTION, own_split=False, drop_empty=False)


def main(args: argparse.Namespace) -> int:
    return print_report(folder.convert(args.src, output_of(args), classes=args.classes, split=split_of(args)))
