"""`lcp env`: what is installed, and whether it is what the project pins."""

from __future__ import annotations

import argparse
import platform
import sys

from lcp.apis.environment import toolchain_report

HELP = "print the installed toolchain (torch, mmcv-full ops, mmdet, ...) and check it against the pins"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--check", action="store_true", help="exit non-zero if a pinned package or mmcv's compiled ops are missing"
    )


def main(args: argparse.Namespace) -> int:
    rows, problems = toolchain_report()
    print(f"python {platform.python_version()} ({sys.executable})")
    width = max(len(row[0]) for row in rows)
    for name, installed, pinned in rows:
        print(f"{name:<{width}}  {installed:<14} {pinned}")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems and args.check else 0
