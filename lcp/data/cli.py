"""`lcp data ...`: the data tools, one module per sub-command (same contract as lcp/cli.py)."""

from __future__ import annotations

import argparse
import importlib

HELP = "convert data sets, synthesise degradations, check them, make the demo scene"

DATA_COMMANDS: dict[str, str] = {
    "demo": "lcp.data.demo",
    "synth": "lcp.data.synth",
    "check": "lcp.data.check",
    "convert": "lcp.data.convert.cli",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="TOOL")
    for name, module_name in DATA_COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_main=module.main)


def main(args: argparse.Namespace) -> int:  # replaced by the chosen tool's main
    raise AssertionError("unreachable: a data tool is required")
