"""`lcp data convert urpc`; its description is the conversion's rules (lcp.data.convert.urpc)."""

from __future__ import annotations

import argparse

from lcp.commands.convert.options import add_output_arguments, add_split_arguments, output_of, print_report, split_of
from lcp.commands.convert.voc import add_source_arguments
from lcp.data.convert import urpc

__doc__ = urpc.__doc__  # `--help` shows the conversion's rules, which the library documents
HELP = "URPC2020 underwater data set (VOC xml; echinus, holothurian, scallop, starfish)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser, "URPC2020")
    add_output_arguments(parser, default_name="urpc")
    add_split_arguments(parser, default_fraction=urpc.DEFAULT_TEST_FRACTION, own_split=False)


def main(args: argparse.Namespace) -> int:
    return print_report(
        urpc.convert(
            args.src,
            output_of(args),
            split=split_of(args),
            images=args.images,
            annotations=args.annotations,
            drop_empty=args.drop_empty,
        )
    )
