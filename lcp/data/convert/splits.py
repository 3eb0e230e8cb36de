"""Which images form the test split: a list of names, or a seeded draw of a share."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lcp.data.convert.report import Report
from lcp.data.convert.samples import Sample
from lcp.data.images import is_source_image
from lcp.errors import LCPError


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
    """A seeded draw of about `test_fraction` of the image stems as the test split.

    Each stem is drawn on its own (a hash of seed and stem against the fraction), so its split
    never depends on which other images a set holds: URPC2020 and its enhanced twin DFUI get
    the same split for every stem they share, even where one of them lacks a few images (a
    whole-list shuffle moved a share of URPC's test images into DFUI's train split, which
    pretraining and LCP's detection-favoured draw read). Images that share a stem (a.jpg and
    a.png, day/a.jpg and night/a.jpg: often the same picture) share a split. The share is
    close to `test_fraction` on a real set (1000 stems at 0.2: 200 +- 13); a draw that leaves
    a split empty that the fraction asks for takes the stem nearest to the other side.
    """
    keys = {sample.image.stem: _stem_key(sample.image.stem, seed) for sample in samples}
    test = {stem for stem, key in keys.items() if key < test_fraction}
    ranked = sorted(keys, key=keys.get)
    if 0 < test_fraction and not test and ranked:
        test = {ranked[0]}
    if test_fraction < 1 and len(test) == len(ranked) > 1:
        test.discard(ranked[-1])
    for sample in samples:
        sample.split = "test" if sample.image.stem in test else "train"


def _stem_key(stem: str, seed: int) -> float:
    """A number in [0, 1) fixed by (seed, stem) alone, the same on every machine and Python."""
    # a name need not be valid UTF-8 (its undecodable bytes are kept as they are on disk)
    digest = hashlib.blake2b(f"{seed}/{stem}".encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


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
