"""`lcp`: one command for training, testing, data tools and tracking.

Each sub-command lives in its own module exposing HELP, add_arguments(parser) and
main(args) -> int. Modules import their heavy dependencies (torch, mmdet) inside main so
that `lcp --help` stays fast. Plumbing - commands the workflow's rules run, not users - is
registered like the others but left out of the command list (the epilog names it).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import signal
import sys
import threading

from lcp.errors import INPUT_REFUSED, LCPError

COMMANDS = {
    "env": "lcp.commands.env",
    "data": "lcp.commands.data",
    "train": "lcp.commands.train",
    "test": "lcp.commands.test",
    "infer": "lcp.commands.infer",
    "heatmaps": "lcp.commands.heatmaps",
    "report": "lcp.commands.report",
    "compare": "lcp.commands.compare",
    "tracking": "lcp.commands.tracking",
    "weights": "lcp.commands.weights",
}
# commands that build a detector: they import mmcv and mmdet the quick way (lcp.deferred_imports)
MMDET_COMMANDS = {"train", "test", "infer", "heatmaps"}
# a file the user must change before a rerun can pass (a workflow does not retry these, exit 2);
# any other (a full disk, a stale NFS handle, a busy file) may pass on a retry (exit 1)
REFUSED_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.ENAMETOOLONG,
    errno.EEXIST,
    errno.ELOOP,
}
PLUMBING = {
    "workdir": "lcp.commands.workdir",
}
EPILOG = """plumbing, run by the workflow's rules (each has --help):
  lcp workdir begin|finish        resumable training work dirs
  lcp tracking open-invocation|close-invocation|log-artifacts
                                  MLflow parent runs and the check and report files"""


def add_subcommands(
    parser: argparse.ArgumentParser,
    commands: dict[str, str],
    dest: str,
    metavar: str,
    plumbing: dict[str, str] | None = None,
) -> argparse._SubParsersAction:
    """Add one sub-parser per module in `commands` and `plumbing` (name -> module path; see this
    module's doc); a plumbing parser gets no `help`, which keeps it out of the parent's list."""
    sub = parser.add_subparsers(dest=dest, required=True, metavar=metavar)
    for name, module_name in {**commands, **(plumbing or {})}.items():
        module = importlib.import_module(module_name)
        listed = {} if name in (plumbing or {}) else {"help": module.HELP}
        command = sub.add_parser(
            name,
            **listed,
            description=module.__doc__ or module.HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(_main=module.main)
    return sub


class ExactParser(argparse.ArgumentParser):
    """No abbreviated options: `--max-erased-shar` is an error, not silently --max-erased-share
    (a typo in a workflow config's options would otherwise pass). Sub-parsers are of this class too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = ExactParser(
        prog="lcp",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_subcommands(parser, COMMANDS, dest="command", metavar="COMMAND", plumbing=PLUMBING)
    return parser


class Terminated(BaseException):
    """SIGTERM (a cluster's time limit or scancel, `kill`): raised so that every `finally`
    removes what the command had not published yet, as Ctrl-C does."""


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        return _main(argv)
    received = []

    def raise_terminated(signum, frame) -> None:
        received.append(signum)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        status = _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)  # a caller in this process (a test) keeps its own
    if received and callable(previous):
        previous(signal.SIGTERM, None)  # and hears of the signal too, once the command has cleaned up
    return status


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args._argv = argv  # a command may start itself again, e.g. `lcp train --gpus N` once per GPU
    if args.command in MMDET_COMMANDS:
        from lcp.deferred_imports import import_mmdet

        import_mmdet()
    try:
        return int(args._main(args) or 0)
    except LCPError as exc:
        print(f"lcp {args.command}: error: {exc}", file=sys.stderr)
        return INPUT_REFUSED
    except (KeyboardInterrupt, Terminated) as exc:
        cause = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else "terminated (SIGTERM)"
        print(f"lcp {args.command}: {cause}; nothing unfinished was published", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 128 + signal.SIGTERM
    except OSError as exc:
        if exc.filename is None:
            raise
        # A file the system refused (no permission, read-only, no space left): one line naming
        # it. The commands publish atomically, so nothing half-written is left behind.
        from lcp.io import published_path

        print(f"lcp {args.command}: error: {published_path(exc.filename)}: {exc.strerror}", file=sys.stderr)
        return INPUT_REFUSED if exc.errno in REFUSED_ERRNOS else 1


if __name__ == "__main__":
    sys.exit(main())
