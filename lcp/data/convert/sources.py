"""Finding a source's files: every regular file below a folder (which of them are images is
lcp.data.images.is_source_image)."""

from __future__ import annotations

import os
from pathlib import Path

from lcp.errors import LCPError


def walk_files(root: Path) -> list[Path]:
    """All regular files below `root`, sorted, skipping hidden files and folders."""
    if not root.is_dir():
        raise LCPError(f"{root}: not a folder")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in files if not f.startswith(".")]
    return sorted(found)
