"""Atomic output: a file is either absent or complete, never half-written."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from lcp.errors import LCPError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    With overwrite=False an existing `path` is an error instead of being replaced.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise LCPError(f"{path}: already exists; remove it or pass --overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str, overwrite: bool = True) -> None:
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any, overwrite: bool = True) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", overwrite)


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LCPError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LCPError(f"{path}: not valid JSON ({exc})") from None
