"""Which images form the test split: a list of names, or a seeded draw of a share."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lcp.data.convert.report import Report
from lcp.data.convert.samples import Sample
from lcp.data.images import is_source_image
from lcp.errors import LCPError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Split:
    """How to split: the image stems listed in `test_list` are the test split, else a
    `seed`ed draw of `test_fraction` of the images (None: the converter's default share).
    For a source with its own split, either one asks to re-split it."""

    test_fraction: float | None = None
    seed: int = 0
    test_list: Path | None = None

    @property
    def resplit(self) -> bool:
        return self.test_fraction is not None or self.test_list is not None


DEFAULT_SPLIT = Split()


def assign_splits(samples: Sequence[Sample], split: Split, default_fraction: float, report: Report) -> None:
    """Set every sample's split from the test list, else a seeded draw."""
    if split.test_list is not None:
        split_by_list(samples, split.test_list, report)
    else:
        share = split.test_fraction if split.test_fraction is not None else default_fraction
        split_by_fraction(samples, share, split.seed)


def split_by_fraction(samples: Sequence[Sample], test_fraction: float, seed: int) -> None:
    """A seeded draw of round(n * test_fraction) test stems, independent of listing order.

    The draw is over file stems, so two sets with the same stems (URPC2020 and its enhanced
    twin DFUI) get the same split from the same seed and fraction, and images that share a
    stem (a.jpg and a.png, day/a.jpg and night/a.jpg: often the same picture) share a split
    instead of leaking one into the test set of the other.
    """
    stems = sorted({sample.image.stem for sample in samples})
    random.Random(seed).shuffle(stems)
    test = set(stems[: round(len(stems) * test_fraction)])
    for sample in samples:
        sample.split = "test" if sample.image.stem in test else "train"


def image_stem(name: str) -> str:
    path = Path(name.strip())
    return path.stem if is_source_image(path) else path.name


def split_by_list(samples: Sequence[Sample], list_file: Path, report: Report) -> None:
    try:
        lines = list_file.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise LCPError(f"{list_file}: cannot read the test list ({exc.strerror})") from None
    wanted = {image_stem(line) for line in lines if line.strip() and not line.lstrip().startswith("#")}
    found = set()
    for sample in samples:
        stem = sample.image.stem
        sample.split = "test" if stem in wanted else "train"
        found.add(stem)
    if wanted and not wanted & found:  # another naming (2007_000001 for 000001): nothing would be tested
        raise LCPError(
            f"{list_file}: none of its {len(wanted)} entries (e.g. {min(wanted)}) is the stem of a converted "
            f"image (e.g. {min(found) if found else 'none'}); list the images' names, one a line"
        )
    for stem in sorted(wanted - found):
        report.warn("test-list entry matches no converted image, ignored", f"{list_file}: {stem}")
