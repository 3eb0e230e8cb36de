"""What a conversion wrote, adjusted and skipped: warnings as they happen, a summary at the end."""

from __future__ import annotations

import os
import sys
from collections import Counter

WARNINGS_SHOWN_PER_REASON = 5


class Report:
    """Counts and warnings of one conversion, rendered as its summary.

    `warn` is for items that may be a problem in the data (printed with their name, the
    first few per reason); `count` is for what a documented rule drops as expected.
    """

    def __init__(self, command: str):
        self.command = command
        self.events: Counter[str] = Counter()
        self.sections: list[str] = []

    def warn(self, reason: str, where: str | os.PathLike) -> None:
        self.events[reason] += 1
        if self.events[reason] <= WARNINGS_SHOWN_PER_REASON:
            print(f"warning: {where}: {reason}", file=sys.stderr)

    def count(self, reason: str, n: int = 1) -> None:
        if n:
            self.events[reason] += n

    def add_section(self, text: str) -> None:
        self.sections.append(text)

    def render(self) -> str:
        lines = [f"lcp data convert {self.command}: done"]
        lines += self.sections
        if self.events:
            lines.append("skipped or adjusted:")
            width = len(str(max(self.events.values())))
            lines += [f"  {n:>{width}}  {reason}" for reason, n in sorted(self.events.items())]
        else:
            lines.append("nothing skipped or adjusted")
        return "\n".join(lines)
