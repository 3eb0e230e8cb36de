"""Where an image set goes and how it gets there: OUT/NAME/*.jpg with flat unique names and
OUT/annotations/NAME_{train,test}.json, refused before any work when it would touch a source
or replace what it may not, and published by renames so a reader never sees half a set."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lcp.data import SPLITS
from lcp.errors import LCPError
from lcp.io import (
    MARKER,
    MARKER_TEXT,
    atomic_path,
    check_folder_output,
    check_outside_sources,
    is_lcp_folder,
    publishing,
    replace_folder,
)


@dataclass(frozen=True)
class Output:
    """The image set a conversion writes: OUT/NAME and its json files, made by `workers`
    processes, replacing an earlier set of that name only when `overwrite`."""

    out: Path
    name: str
    workers: int = 1
    overwrite: bool = False


def check_name(name: str) -> None:
    if not name or name in {".", "..", "annotations"} or name.startswith(".") or "/" in name or "\\" in name:
        raise LCPError(f"{name!r}: not usable as an image set name (a plain folder name, not 'annotations')")


def output_paths(out: Path, name: str) -> list[Path]:
    return [out / name] + [out / "annotations" / f"{name}_{split}.json" for split in SPLITS]


def check_output_free(out: Path, names: Iterable[str], overwrite: bool, sources: Iterable[Path | None] = ()) -> None:
    """Refuse before any work an image set that would touch a source, replace what lcp did
    not write, or replace anything without --overwrite. The json files go with the folder:
    they are replaced only beside an image set folder lcp wrote."""
    if out.exists() and not out.is_dir():
        raise LCPError(f"{out}: exists and is not a folder")
    sources = list(sources)
    for name in names:
        check_name(name)
        folder, *jsons = output_paths(out, name)
        check_folder_output(folder, overwrite, sources)
        for path in jsons:
            check_outside_sources(path, sources)
            if not path.exists():
                continue
            if not is_lcp_folder(folder):
                raise LCPError(
                    f"{path}: already exists beside no image set lcp wrote ({folder} has no {MARKER}), "
                    "so even --overwrite does not replace it; remove it by hand or choose another name"
                )
            if not overwrite:
                raise LCPError(f"{path}: already exists; remove it or pass --overwrite")


# control characters, and the surrogates Python reads a file name's non-UTF-8 bytes as
UNWRITABLE = re.compile("[\x00-\x1f\x7f\udc80-\udcff]")


def flat_names(paths: Sequence[Path]) -> list[str]:
    """Unique flat .jpg names for `paths`, also on case-insensitive file systems.

    A file keeps its stem unless another file shares it (ignoring case); then each file of
    that group is named after its path below the common folder, folders joined with '__'
    and the extension kept as '_ext' (a/x.png -> a__x_png.jpg). A control character (a
    newline, a tab) or a byte that is no UTF-8 (a Latin-1 'é' from an old archive) becomes '_':
    the names go into json files, logs and listings that such names would break. The result
    depends only on the set of paths, not on their listing order.
    """
    if not paths:
        return []
    root = Path(os.path.commonpath([p.parent for p in paths]))
    relative = [p.relative_to(root) for p in paths]
    stems = Counter(r.stem.lower() for r in relative)
    candidates = []
    for r in relative:
        if stems[r.stem.lower()] == 1:
            candidates.append(r.stem)
        else:
            candidates.append("__".join([*r.parent.parts, f"{r.stem}_{r.suffix.lstrip('.').lower()}"]))
    written = [UNWRITABLE.sub("_", candidate) for candidate in candidates]
    # a derived name can still meet another file's stem (or differ from it only in case); a
    # name with characters replaced yields to a file whose own it is (new_line.png: new_line.jpg)
    used: set[str] = set()
    names = [""] * len(paths)
    for i in sorted(range(len(paths)), key=lambda i: (written[i] != candidates[i], relative[i].as_posix())):
        name, n = written[i], 1
        while name.lower() in used:
            n += 1
            name = f"{written[i]}_{n}"
        used.add(name.lower())
        names[i] = name + ".jpg"
    return names


def publish(staging: Path, out: Path, name: str, splits: Sequence[str], overwrite: bool) -> None:
    """Move the staged image folder (marked as lcp's) and the json files of `splits` from
    `staging` into place, replacing an older set only when `overwrite`. The json files first go
    beside their targets under temporary names, so a folder that refuses them fails before the
    older set is touched; they are renamed right after the image folder's swap, before the
    older folder is removed (replace_folder)."""
    (staging / name / MARKER).write_text(MARKER_TEXT)
    annotations = out / "annotations"
    annotations.mkdir(exist_ok=True)
    with publishing(out), contextlib.ExitStack() as renamed_with_the_folder:
        check_output_free(out, [name], overwrite)  # as another run may have left it meanwhile
        for split in splits:
            json_path = annotations / f"{name}_{split}.json"
            # copied into the held temporary, keeping the file its flock is on (lcp.io)
            shutil.copyfile(
                staging / "annotations" / json_path.name, renamed_with_the_folder.enter_context(atomic_path(json_path))
            )
        replace_folder(staging / name, out / name, overwrite, then=renamed_with_the_folder.close)
        for split in SPLITS:
            if split not in splits:  # a split the replaced set had and the new one lacks
                (annotations / f"{name}_{split}.json").unlink(missing_ok=True)
