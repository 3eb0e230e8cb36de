"""`lcp data ...`: convert data sets, synthesise degradations, check them, make the demo scene."""

from __future__ import annotations

import argparse

HELP = "convert data sets, synthesise degradations, check them, make the demo scene"
# the convert module's docstring speaks to developers
CONVERT_DESCRIPTION = """`lcp data convert FORMAT ...`: convert a data set in one of these formats into the
scene layout; `lcp data convert FORMAT --help` gives each format's options."""

DATA_COMMANDS: dict[str, str] = {
    "demo": "lcp.data.demo",
    "synth": "lcp.data.synth",
    "check": "lcp.data.check",
    "convert": "lcp.data.convert.cli",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lcp.cli import add_subcommands

    tools = add_subcommands(parser, DATA_COMMANDS, dest="data_command", metavar="TOOL")
    tools.choices["convert"].description = CONVERT_DESCRIPTION


def main(args: argparse.Namespace) -> int:  # replaced by the chosen tool's main
    raise AssertionError("unreachable: a data tool is required")
