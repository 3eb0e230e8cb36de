"""How many images the demo scene has and how many of them its test split takes: pure numbers,
light to import, so that the workflow's checks need not import the scene renderer."""

from __future__ import annotations

NUM_IMAGES = 300
TEST_FRACTION = 0.2


def test_split_size(num_images: int, test_fraction: float = TEST_FRACTION) -> int:
    """How many of the scene's images its test split holds: at least one, and one fewer than all."""
    return min(num_images - 1, max(1, int(round(num_images * test_fraction))))
