"""Every source image decoded once and written as .jpg, in parallel.

JPEG sources are copied byte for byte (a second lossy encoding would only lose detail),
others are encoded by lcp.data.images.encode_jpeg with 4:2:0 chroma subsampling, as they
always were (the same source gives the same bytes); the decoded size is what the boxes are
clipped to. An image is decoded turned by its EXIF orientation, as mmdet reads it in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from lcp.data.images import decode_image, encode_jpeg, exif_orientation
from lcp.errors import LCPError
from lcp.io import naming
from lcp.progress import map_with_progress


def _one_thread_per_process() -> None:
    import cv2

    cv2.setNumThreads(1)  # the pool already runs one process per core


class Decoded(NamedTuple):
    """An image as written: its size as decoded, and the EXIF orientation that turned it (1: none)."""

    width: int
    height: int
    orientation: int = 1


def transcode_image(job: tuple[str, str]) -> Decoded | str:
    """Decode `src`, write it to `dst` as JPEG; return its Decoded or what went wrong."""
    import cv2

    src, dst = job
    try:
        data = Path(src).read_bytes()
    except OSError as exc:
        return f"cannot read the image ({exc.strerror})"
    try:
        image = decode_image(data) if data else None
    except cv2.error:
        image = None
    if image is None:
        return "not a readable image (decoding failed)"
    orientation = exif_orientation(data)
    if data[:3] != b"\xff\xd8\xff":  # written turned, without the tag
        try:
            data = encode_jpeg(image, subsample_chroma=True)
        except RuntimeError:
            return "could not be encoded as JPEG"
    with naming(dst):  # a full disk names the file, not a traceback from a worker process
        Path(dst).write_bytes(data)
    height, width = image.shape[:2]
    return Decoded(width, height, orientation)


def transcode_images(sources: Sequence[Path], targets: Sequence[Path], workers: int, desc: str) -> list[Decoded]:
    """Write each source image to its target as .jpg, with progress; the Decoded of each, or
    an LCPError naming the first source that could not be converted."""
    jobs = [(str(source), str(target)) for source, target in zip(sources, targets, strict=True)]
    # in a pool only: a serial run leaves the calling process's OpenCV threads alone
    initializer = _one_thread_per_process if workers > 1 else None
    sizes = map_with_progress(transcode_image, jobs, workers, desc, initializer=initializer)
    for source, size in zip(sources, sizes, strict=True):
        if isinstance(size, str):
            raise LCPError(f"{source}: {size}")
    return sizes
