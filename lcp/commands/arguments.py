"""argparse value types the commands share: each turns one option's text into its value or
says in one line why it cannot."""

from __future__ import annotations

import argparse
from collections import Counter


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def class_list(text: str) -> list[str]:
    """Comma-separated class names, each named once."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"empty class name in {text!r}")
    duplicates = sorted(name for name, n in Counter(names).items() if n > 1)
    if duplicates:
        raise argparse.ArgumentTypeError(f"class listed twice: {', '.join(duplicates)}")
    return names
