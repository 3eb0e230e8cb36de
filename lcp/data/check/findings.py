"""What `lcp data check` found: errors (they fail the gate) and warnings, grouped by reason."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any


class Findings:
    """Errors (fail the gate) and warnings, grouped by reason."""

    def __init__(self) -> None:
        self.errors: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.warnings: dict[str, list[dict[str, str]]] = defaultdict(list)

    def error(self, reason: str, file: str | Path, detail: str) -> None:
        self.errors[reason].append({"file": str(file), "detail": detail})

    def warning(self, reason: str, file: str | Path, detail: str) -> None:
        self.warnings[reason].append({"file": str(file), "detail": detail})

    @staticmethod
    def grouped(found: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
        return {reason: {"count": len(items), "items": items} for reason, items in sorted(found.items())}
