"""Speed of the data tools: `lcp data demo`, `lcp data synth fog|rain|underwater`, `lcp data check`.

Renders clean images with the demo scene at demo size (128x128) and at Cityscapes size
(2048x1024), synthesises each degradation from them with every --workers value, checks the
result, and prints images/s and the speed-up over one worker (all from one run, so the
ratios compare like with like). Demo generation itself is single-process.

    .venv/bin/python bench/bench_data.py [--small 200] [--large 12] [--workers 1 2]
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
from lcp.data.depth import encode_depth_png
from lcp.data.images import encode_jpeg
from lcp.data.shapes_scene import FAR_M, NEAR_M, render_scene


def run(argv: list[str]) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = lcp_main(argv)
    elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"lcp {' '.join(argv)} failed with exit code {code}")
    return elapsed


def make_clean(folder: Path, depth_folder: Path, count: int, width: int, height: int) -> None:
    """Demo-scene pictures and their depth maps at any size (rendered square, resized)."""
    folder.mkdir(parents=True)
    depth_folder.mkdir(parents=True)
    side = min(max(width, height), 1024)
    for index in range(count):
        scene = render_scene(side, np.random.default_rng([0, index]))
        image, depth = scene.image, scene.depth
        if (width, height) != (side, side):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
            depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)
        (folder / f"img_{index:05d}.jpg").write_bytes(encode_jpeg(image))
        (depth_folder / f"img_{index:05d}.png").write_bytes(encode_depth_png(depth))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=200, help="images at 128x128 (default: %(default)s)")
    parser.add_argument("--large", type=int, default=12, help="images at 2048x1024 (default: %(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)")
    args = parser.parse_args()

    print(f"cores: {os.cpu_count()}")
    print(f"{'tool':>16} {'size':>10} {'images':>7} {'workers':>8} {'images/s':>9} {'speed-up':>9}")
    row = "{:>16} {:>10} {:>7} {:>8} {:>9.1f} {:>8.2f}x"
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        tmp = Path(tmp)
        demo_rate = args.small / run(
            [
                "data",
                "demo",
                "--out",
                str(tmp / "demo"),
                "--num-images",
                str(args.small),
                "--size",
                "128",
                "--no-progress",
            ]
        )
        print(row.format("demo", "128x128", args.small, 1, demo_rate, 1.0))
        demo_large = max(2, args.large // 2)
        rate = demo_large / run(
            [
                "data",
                "demo",
                "--out",
                str(tmp / "demo_large"),
                "--num-images",
                str(demo_large),
                "--size",
                "1024",
                "--no-progress",
            ]
        )
        print(row.format("demo", "1024x1024", demo_large, 1, rate, 1.0))

        for width, height, count in ((128, 128, args.small), (2048, 1024, args.large)):
            size = f"{width}x{height}"
            src, depth = tmp / f"clean_{size}", tmp / f"depth_{size}"
            make_clean(src, depth, count, width, height)
            scene_depth = ["--depth-dir", str(depth), "--near", str(NEAR_M), "--far", str(FAR_M)]
            # Underwater keeps its default 1-10 m ground plane: the street's depth would drown it.
            for kind, depth_args in (("fog", scene_depth), ("rain", scene_depth), ("underwater", [])):
                baseline = None
                for workers in args.workers:
                    out = tmp / f"{kind}_{size}"
                    shutil.rmtree(out, ignore_errors=True)
                    rate = count / run(
                        [
                            "data",
                            "synth",
                            kind,
                            "--src",
                            str(src),
                            "--out",
                            str(out),
                            "--workers",
                            str(workers),
                            "--no-progress",
                            *depth_args,
                        ]
                    )
                    baseline = baseline or rate
                    print(row.format(f"synth {kind}", size, count, workers, rate, rate / baseline))
            baseline = None
            for workers in args.workers:
                rate = count / run(
                    [
                        "data",
                        "check",
                        "--lowq",
                        str(tmp / f"fog_{size}"),
                        "--clean",
                        str(src),
                        "--workers",
                        str(workers),
                        "--no-progress",
                    ]
                )
                baseline = baseline or rate
                print(row.format("check fog", size, count, workers, rate, rate / baseline))


if __name__ == "__main__":
    main()
