"""`lcp`: one command for training, testing, data tools and tracking.

Each sub-command lives in its own module exposing HELP, add_arguments(parser) and
main(args) -> int. Modules import their heavy dependencies (torch, mmdet) inside main so
that `lcp --help` stays fast. Plumbing - commands the workflow's rules run, not users - is
registered like the others but left out of the command list (the epilog names it).
"""

from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import os
import signal
import sys
import threading

from lcp.errors import INPUT_REFUSED, LCPError, error_message

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


class Subcommands(argparse._SubParsersAction):
    """A sub-command's --help opens with the line that lists it in its parent's help."""

    def add_parser(self, name, **kwargs):
        if "help" in kwargs:
            kwargs.setdefault("description", kwargs["help"])
        return super().add_parser(name, **kwargs)


class ExactParser(argparse.ArgumentParser):
    """No abbreviated options: `--max-erased-shar` is an error, not silently --max-erased-share
    (a typo in a workflow config's options would otherwise pass). Sub-parsers are of this class too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", Subcommands)

    def _check_value(self, action, value):
        """A misspelt command gets the closest one named: `lcp trian` -> did you mean 'train'?"""
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError as exc:
            close = difflib.get_close_matches(str(value), [str(choice) for choice in action.choices or ()], n=1)
            if not close:
                raise
            raise argparse.ArgumentError(action, f"{exc.message}; did you mean {close[0]!r}?") from None


def chosen_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost sub-parser that `args` went through (`lcp data convert voc`'s for that command)."""
    while True:
        action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = getattr(args, action.dest, None) if action is not None else None
        if name not in (action.choices if action is not None else {}):
            return parser
        parser = action.choices[name]


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """parse_args, but an unknown option is refused by the sub-command it was given to, with its
    usage and the closest option it has (argparse's own message shows `lcp`'s usage only)."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        command = chosen_parser(parser, args)
        before_command = argv[: argv.index(args.command)] if args.command in argv else []
        if any(extra in before_command for extra in extras):  # `lcp --verison tracking uri`: lcp's own
            command = parser
        options = [option for action in command._actions for option in action.option_strings]
        close = [
            match
            for extra in extras
            if extra.startswith("-")
            for match in difflib.get_close_matches(extra.split("=")[0], options, n=1)
        ]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        command.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = ExactParser(
        prog="lcp",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lcp {package_version()}")
    add_subcommands(parser, COMMANDS, dest="command", metavar="COMMAND", plumbing=PLUMBING)
    return parser


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lcp")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def stdout_is_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (`lcp ... | head`), not some other pipe
    lcp writes to (a worker's): the kernel reports a pipe without readers as an error condition."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), stdout closed or replaced
        return False


def exit_status(exc: Exception) -> int:
    """The status an `lcp` command that raised `exc` exits with: INPUT_REFUSED for what the user
    must change before a rerun can pass (a workflow does not retry it), 1 for anything else."""
    if isinstance(exc, LCPError) or (
        isinstance(exc, OSError) and exc.filename is not None and exc.errno in REFUSED_ERRNOS
    ):
        return INPUT_REFUSED
    return 1


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
    name = "lcp"
    try:
        # parsing imports every command module, and mmdet takes seconds: Ctrl-C there is one line too
        args = parse(build_parser(), argv)
        name = f"lcp {args.command}"
        args._argv = argv  # a command may start itself again, e.g. `lcp train --gpus N` once per GPU
        if args.command in MMDET_COMMANDS:
            from lcp.deferred_imports import import_mmdet

            import_mmdet()
        return int(args._main(args) or 0)
    except LCPError as exc:
        print(f"{name}: error: {error_message(exc)}", file=sys.stderr)
        return INPUT_REFUSED
    except (KeyboardInterrupt, Terminated) as exc:
        cause = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else "terminated (SIGTERM)"
        print(f"{name}: {cause}; nothing unfinished was published", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 128 + signal.SIGTERM
    except BrokenPipeError:
        if not stdout_is_closed():
            raise
        # the reader of stdout stopped reading (`| head`): not an error of lcp's; stop quietly,
        # and let nothing write to the closed pipe again at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except OSError as exc:
        if exc.filename is None:
            raise
        # A file the system refused (no permission, read-only, no space left): one line naming
        # it. The commands publish atomically, so nothing half-written is left behind.
        from lcp.io import published_path

        print(f"{name}: error: {published_path(exc.filename)}: {exc.strerror}", file=sys.stderr)
        return exit_status(exc)


if __name__ == "__main__":
    sys.exit(main())
