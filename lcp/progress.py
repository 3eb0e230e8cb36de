"""Progress that reads well on a terminal and in a job log alike.

A bar redrawn in place (tqdm's, mmcv's ProgressBar) writes carriage returns, and tqdm turns
itself off where its stream is no terminal: in a SLURM or Snakemake log file a long step is
either silent or one line of thousands of characters. Off a terminal, progress is written
as whole lines instead, one every few seconds and one at the end:
"convert lowq: 120/500 img (24%), 3.2 img/s, elapsed 38 s, ETA 1 min 59 s".

`map_with_progress` is the one loop the data tools (convert, synth, check) run their images
through: in this process or in a process pool, with these progress lines.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
LINE_INTERVAL_S = 5.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


class ProgressLines:
    """Counts work done; writes a line when `interval` seconds passed since the last one, and
    when the work is complete."""

    def __init__(self, total: int, desc: str, unit: str, file: IO[str], interval: float = LINE_INTERVAL_S):
        self.total, self.desc, self.unit, self.file, self.interval = total, desc, unit, file, interval
        self.done = 0
        self.started = self.last_line = time.monotonic()

    def update(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self.done != self.total and now - self.last_line < self.interval:
            return
        self.last_line = now
        print(self.line(now - self.started), file=self.file, flush=True)

    def line(self, elapsed: float) -> str:
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self.desc}: {self.done}/{self.total} {self.unit}"
        if self.total > 0:
            text += f" ({100 * self.done // self.total}%)"
        text += f", {rate:.1f} {self.unit}/s, elapsed {_duration(elapsed)}"
        if 0 < self.done < self.total and rate > 0:
            text += f", ETA {_duration((self.total - self.done) / rate)}"
        return text


def progress(
    items: Iterable[Item], desc: str, unit: str = "img", total: int | None = None, file: IO[str] | None = None
) -> Iterator[Item]:
    """`items`, with a tqdm bar on a terminal and progress lines (see the module) elsewhere;
    `total` defaults to len(items)."""
    file = file if file is not None else sys.stderr
    total = len(items) if total is None else total  # type: ignore[arg-type]
    if is_terminal(file):
        from tqdm import tqdm

        yield from tqdm(items, desc=desc, unit=unit, total=total, file=file, dynamic_ncols=True, leave=False)
        return
    lines = ProgressLines(total, desc, unit, file)
    for item in items:
        yield item
        lines.update()


def _quiet_about_cancelled_futures(previous_hook, args) -> None:
    """Python 3.11's executor thread, finding its killed workers, sets an error on the futures the
    interrupted map has just cancelled and dies with InvalidStateError: noise after one line
    already said why the run stopped."""
    from concurrent.futures import InvalidStateError
    from concurrent.futures.process import _ExecutorManagerThread

    if not (issubclass(args.exc_type, InvalidStateError) and isinstance(args.thread, _ExecutorManagerThread)):
        previous_hook(args)


def _worker_start(initializer: Callable[..., None] | None, initargs: tuple, parent: int | None) -> None:
    """A pool worker leaves Ctrl-C and SIGTERM to the process that started it, which stops the
    pool (forked, it would inherit lcp's handlers and each print its own traceback), and ends
    when that process ends, however it ends."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _end_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def _end_with_parent(parent: int | None) -> None:
    """Have the kernel kill this process when `parent` dies (Linux): after a `kill -9` of lcp its
    workers wrote on for minutes, holding the locks that mark its temporaries live, so the next
    run could not remove them. `parent` None: not forked by lcp itself (forkserver), skipped."""
    import ctypes
    import signal

    if parent is None:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the workers outlive a killed parent
        return
    if os.getppid() != parent:  # it died before the request was made
        os._exit(1)


def map_with_progress(
    fn: Callable[[Item], Result],
    items: Sequence[Item],
    workers: int,
    desc: str,
    unit: str = "img",
    show: bool = True,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> list[Result]:
    """[fn(item) for item in items], in input order, with `progress` when `show`.

    With workers <= 1 (or fewer than two items) fn runs in this process, else in a pool of
    min(workers, len(items)) processes. `initializer(*initargs)` runs first in every process
    that runs fn, this one included when serial, so fn may rely on what it sets up.
    """
    if workers <= 1 or len(items) < 2:
        if initializer is not None:
            initializer(*initargs)
        results: Iterable[Result] = map(fn, items)
        return list(progress(results, desc, unit, total=len(items)) if show else results)
    # concurrent.futures, not multiprocessing.Pool: when a worker dies (out of memory, killed),
    # Pool replaces it and waits forever for the items it held; the executor raises instead.
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from lcp.errors import LCPError

    workers = min(workers, len(items))
    chunksize = max(1, min(16, len(items) // (4 * workers)))
    previous_hook = threading.excepthook
    try:
        import multiprocessing

        forked = multiprocessing.get_start_method() != "forkserver"  # whose workers are not our children
        with ProcessPoolExecutor(
            workers, initializer=_worker_start, initargs=(initializer, initargs, os.getpid() if forked else None)
        ) as pool:
            try:
                results = pool.map(fn, items, chunksize=chunksize)
                return list(progress(results, desc, unit, total=len(items)) if show else results)
            except BaseException as exc:  # Ctrl-C, SIGTERM: the workers stop too, instead of writing on
                threading.excepthook = functools.partial(_quiet_about_cancelled_futures, previous_hook)
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.kill()
                if not isinstance(exc, BrokenProcessPool):
                    raise
                raise LCPError(
                    f"{desc}: a worker process died (killed, or out of memory?), so the run stops. "
                    f"Run it again, with fewer --workers if memory is short"
                ) from None
    finally:  # the executor's thread has ended with the pool
        threading.excepthook = previous_hook
