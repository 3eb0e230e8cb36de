"""Conversion speed of `lcp data convert` (decode + jpg encode or copy + COCO json).

Generates image folders at demo size (128x128) and Cityscapes size (2048x1024), as PNG
(decoded and re-encoded to jpg, like Cityscapes) and as JPEG (decoded to check it and read
its size, then copied), converts each with `lcp data convert folder` for every --workers
value, and prints images/s and the speed-up over one worker.

    .venv/bin/python bench/bench_convert.py [--small 400] [--large 24] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from lcp.cli import main as lcp_main


def make_images(folder: Path, count: int, width: int, height: int, suffix: str) -> None:
    """Street-like pictures: a gradient, some rectangles, mild sensor noise."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    ramp = np.linspace(40, 200, width, dtype=np.float32)
    for i in range(count):
        image = np.repeat(np.repeat(ramp[None, :, None], height, 0), 3, 2)
        for _ in range(8):
            x, y = int(rng.integers(width)), int(rng.integers(height))
            image[y : y + height // 6, x : x + width // 8] = rng.integers(0, 255, 3)
        image += rng.normal(0, 4, image.shape).astype(np.float32)
        cv2.imwrite(str(folder / f"img_{i:05d}{suffix}"), np.clip(image, 0, 255).astype(np.uint8))


def time_convert(src: Path, out: Path, workers: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = lcp_main(["data", "convert", "folder", str(src), str(out), "--workers", str(workers)])
    elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"conversion of {src} failed with exit code {code}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=400, help="images at 128x128 (default: %(default)s)")
    parser.add_argument("--large", type=int, default=24, help="images at 2048x1024 (default: %(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)")
    args = parser.parse_args()

    print(f"cores: {os.cpu_count()}")
    print(f"{'size':>10} {'source':>6} {'images':>7} {'workers':>8} {'images/s':>9} {'speed-up':>9}")
    with tempfile.TemporaryDirectory(prefix="bench_convert_") as tmp:
        tmp = Path(tmp)
        for width, height, count in ((128, 128, args.small), (2048, 1024, args.large)):
            for suffix in (".png", ".jpg"):
                src = tmp / f"src_{width}_{suffix[1:]}"
                make_images(src, count, width, height, suffix)
                baseline = None
                for workers in args.workers:
                    rate = count / time_convert(src, tmp / "out", workers)
                    baseline = baseline or rate
                    size = f"{width}x{height}"
                    print(f"{size:>10} {suffix[1:]:>6} {count:>7} {workers:>8} {rate:>9.1f} {rate / baseline:>8.2f}x")


if __name__ == "__main__":
    main()
