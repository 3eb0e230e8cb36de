"""Finding a source's files: every regular file below a folder (which of them are images is
lcp.data.images.is_source_image)."""

from __future__ import annotations

import os
from pathlib import Path

from lcp.errors import LCPError


def _unreadable(error: OSError) -> None:
    raise LCPError(f"{error.filename}: cannot list this folder of the source ({error.strerror})")


def walk_files(root: Path) -> list[Path]:
    """All files below `root`, sorted, skipping hidden files and folders.

    Symlinked folders are followed (a data set assembled from links is common), each real
    folder once, so a link loop ends; a folder that cannot be listed is an error, never a
    silently smaller data set.
    """
    if not root.is_dir():
        raise LCPError(f"{root}: not a folder")
    found = []
    visited: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, onerror=_unreadable, followlinks=True):
        stat = os.stat(folder)
        if (stat.st_dev, stat.st_ino) in visited:
            dirs[:] = []
            continue
        visited.add((stat.st_dev, stat.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in files if not f.startswith(".")]
    return sorted(found)
