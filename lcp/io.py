"""Atomic output: a file or folder is either absent or complete, never half-written."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it replaces `path` at once.

    An existing `path` is an LCPError unless overwrite is True. On failure the temporary
    folder is removed and `path` is left as it was.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise LCPError(f"{path}: already exists; remove it or pass --overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


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
