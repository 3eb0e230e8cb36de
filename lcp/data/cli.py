"""`lcp data ...`: convert data sets, synthesise degradations, check them, make the demo scene."""

from __future__ import annotations

import argparse

HELP = "convert data sets, synthesise degradations, check them, make the demo scene"

DATA_COMMANDS: dict[str, str] = {
    "demo": "lcp.data.demo",
    "synth": "lcp.data.synth",
    "check": "lcp.data.check",
    "convert": "lcp.data.convert.cli",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lcp.cli import add_subcommands

    add_subcommands(parser, DATA_COMMANDS, dest="data_command", metavar="TOOL")


def main(args: argparse.Namespace) -> int:  # replaced by the chosen tool's main
    raise AssertionError("unreachable: a data tool is required")
