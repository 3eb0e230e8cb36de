"""`lcp workdir begin|finish`: resumable training steps for the workflow (see lcp.workflow.workdir)."""

from __future__ import annotations

import argparse

from lcp.workflow.workdir import begin, finish

HELP = "start or resume a training work dir, and publish its final checkpoint (used by the workflow)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="workdir_command", required=True, metavar="ACTION")
    begin_parser = sub.add_parser("begin", help="keep DIR for resuming, or empty it when it cannot be resumed")
    begin_parser.add_argument("work_dir", metavar="DIR", help="the training work dir")
    begin_parser.add_argument(
        "--request", required=True, help="what the run is asked to do (e.g. the training command line)"
    )
    begin_parser.add_argument(
        "--input",
        dest="inputs",
        action="extend",
        nargs="+",
        default=[],
        metavar="PATH",
        help="files or folders the run reads (config, initial checkpoint, image sets); repeatable",
    )
    begin_parser.add_argument(
        "--checkpoint",
        metavar="OUT",
        help="where `finish` will publish the checkpoint: holds a placeholder until then, so "
        "that a killed job leaves an output snakemake knows is incomplete",
    )
    begin_parser.set_defaults(_main=main_begin)
    finish_parser = sub.add_parser("finish", help="publish DIR's last checkpoint as OUT and mark DIR finished")
    finish_parser.add_argument("work_dir", metavar="DIR", help="the training work dir")
    finish_parser.add_argument("--checkpoint", required=True, metavar="OUT", help="where the final checkpoint goes")
    finish_parser.set_defaults(_main=main_finish)


def main(args: argparse.Namespace) -> int:  # replaced by the chosen action's main
    raise AssertionError("unreachable: an action is required")


def main_begin(args: argparse.Namespace) -> int:
    outcome = begin(args.work_dir, args.request, args.inputs, args.checkpoint)
    print(f"lcp workdir: {args.work_dir}: {outcome}")
    return 0


def main_finish(args: argparse.Namespace) -> int:
    source = finish(args.work_dir, args.checkpoint)
    print(f"lcp workdir: published {source} as {args.checkpoint}")
    return 0
