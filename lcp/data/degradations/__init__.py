"""Physical degradation models, registered by name and built from their keyword parameters.

Each model synthesises a low-quality image from a clean one and its depth, and measures,
for `lcp data check`, how strongly a synthesised image is degraded against its clean source.

Naming rule (shared by synth and check): a synthesised image is named
`<clean stem>_<marker>_<key>_<value>[_<key>_<value>...].jpg`, the marker being `foggy`,
`rain` or `underwater` (the public Foggy/Rainy Cityscapes use the same pattern, e.g.
`aachen_000000_000019_leftImg8bit_foggy_beta_0.02.png`). The clean stem of a low-quality
image is its stem cut at the LAST `_<marker>_`.
"""

from __future__ import annotations

from lcp.data.degradations.base import Degradation

DEGRADATIONS: dict[str, type[Degradation]] = {}


def register(cls: type[Degradation]) -> type[Degradation]:
    if cls.name in DEGRADATIONS:
        raise ValueError(f"degradation {cls.name!r} registered twice")
    DEGRADATIONS[cls.name] = cls
    return cls


def split_lowq_stem(stem: str, markers: list[str]) -> tuple[str, str, dict[str, str]] | None:
    """(clean stem, marker, parameters) of a low-quality stem; None if no marker is in it."""
    best = None
    for marker in markers:
        index = stem.rfind(f"_{marker}_")
        if index > 0 and (best is None or index > best[0]):
            best = (index, marker)
    if best is None:
        return None
    index, marker = best
    tokens = stem[index + len(marker) + 2 :].split("_")
    params = {tokens[i]: tokens[i + 1] for i in range(0, len(tokens) - 1, 2)}
    return stem[:index], marker, params


# Importing the models registers them.
from lcp.data.degradations import fog, rain, underwater  # noqa: E402,F401
