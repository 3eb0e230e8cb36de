"""`lcp`: one command for training, testing, data tools and tracking.

Each sub-command lives in its own module exposing HELP, add_arguments(parser) and
main(args) -> int. Modules import their heavy dependencies (torch, mmdet) inside main so
that `lcp --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lcp.errors import LCPError

COMMANDS = {
    "env": "lcp.tools.env",
    "data": "lcp.data.cli",
    "train": "lcp.tools.train",
    "test": "lcp.tools.test",
    "infer": "lcp.tools.infer",
    "heatmaps": "lcp.tools.heatmaps",
    "workdir": "lcp.tools.workdir",
    "report": "lcp.report.cli",
    "compare": "lcp.tracking.compare",
    "tracking": "lcp.tracking.cli",
}


def add_subcommands(parser: argparse.ArgumentParser, commands: dict[str, str], dest: str,
                    metavar: str) -> None:
    """Add one sub-parser per module in `commands` (name -> module path); see this module's doc."""
    sub = parser.add_subparsers(dest=dest, required=True, metavar=metavar)
    for name, module_name in commands.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.__doc__ or module.HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(_main=module.main)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lcp", description=__doc__.split("\n\n")[0])
    add_subcommands(parser, COMMANDS, dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args._argv = argv  # a command may start itself again, e.g. `lcp train --gpus N` once per GPU
    try:
        return int(args._main(args) or 0)
    except LCPError as exc:
        print(f"lcp {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
