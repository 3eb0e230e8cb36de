"""Progress that reads well on a terminal and in a job log alike.

A bar redrawn in place (tqdm's, mmcv's ProgressBar) writes carriage returns, and tqdm turns
itself off where its stream is no terminal: in a SLURM or Snakemake log file a long step is
either silent or one line of thousands of characters. Off a terminal, progress is written
as whole lines instead, one every few seconds and one at the end:
"convert lowq: 120/500 img (24%), 3.2 img/s, elapsed 38 s, ETA 1 min 59 s".
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

Item = TypeVar("Item")
LINE_INTERVAL_S = 5.0


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


def progress(items: Iterable[Item], desc: str, unit: str = "img", total: int | None = None,
             file: IO[str] | None = None) -> Iterator[Item]:
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
