"""`lcp heatmaps`: pictures of an LCP checkpoint's crux masks on the first test images.

Writes exactly OUT_DIR/crux_heatmap_0.png .. OUT_DIR/crux_heatmap_{N-1}.png for the first N
images of the config's test set (in data-set order). Each picture shows the image, the crux
learner's mask on the fixed 0..1 scale and on its own min..max range (numbers in the
title, so a flat mask is obvious), and the crux image; a collapsed mask gets the verdict
("crux learner collapsed: ...") as a red headline. All pictures are made before any is
written, each written atomically; OUT_DIR may exist, but existing crux_heatmap_*.png files
in it are replaced only with --overwrite (stale higher-numbered ones are then removed).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from lcp.apis.options import add_cfg_options, parse_cfg_options
from lcp.errors import LCPError

HELP = "draw an LCP checkpoint's crux masks on the first test images (crux_heatmap_<i>.png)"
PICTURE = "crux_heatmap_{}.png"
PICTURE_PATTERN = re.compile(r"crux_heatmap_\d+\.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="mmdet config file of an LCP model (its data.test is drawn)")
    parser.add_argument("checkpoint", help="checkpoint file (.pth)")
    parser.add_argument("--out-dir", required=True, help="folder for crux_heatmap_0.png ... (may exist)")
    parser.add_argument("--count", type=int, default=4, help="number of test images drawn (default 4)")
    add_cfg_options(parser)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace crux_heatmap_*.png files already in --out-dir")
    parser.add_argument("--gpu-id", type=int, default=0, help="GPU to use when there is one (default 0)")


def existing_pictures(out_dir: Path) -> list[Path]:
    if not out_dir.is_dir():
        return []
    return sorted(path for path in out_dir.iterdir() if PICTURE_PATTERN.fullmatch(path.name))


def main(args: argparse.Namespace) -> int:
    from mmdet.datasets import build_dataset

    from lcp.apis.config import load_config
    from lcp.apis.options import select_device
    from lcp.datasets.checks import check_dataset_cfg
    from lcp.io import atomic_path, check_outside_sources
    from lcp.tools.test import build_test_model
    from lcp.tracking.heatmaps import render_crux_heatmaps

    if args.count < 1:
        raise LCPError(f"--count {args.count}: must be at least 1")
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise LCPError(f"{out_dir}: exists and is not a folder")
    existing = existing_pictures(out_dir)
    if existing and not args.overwrite:
        raise LCPError(f"{existing[0]}: already exists; remove it or pass --overwrite")
    targets = [out_dir / PICTURE.format(index) for index in range(args.count)]
    for target in targets:
        check_outside_sources(target, [args.config, args.checkpoint])

    cfg = load_config(args.config, parse_cfg_options(args.cfg_options))
    test_cfg = cfg.data.test
    test_cfg.test_mode = True
    check_dataset_cfg(test_cfg)
    dataset = build_dataset(test_cfg)
    if len(dataset) < args.count:
        raise LCPError(f"{args.config}: the test set has {len(dataset)} image{'s' * (len(dataset) != 1)}, "
                       f"fewer than --count {args.count}")
    model = build_test_model(cfg, args.checkpoint)
    if not hasattr(model, "crux_learner"):
        raise LCPError(f"{args.config}: the model ({type(model).__name__}) has no crux learner; "
                       "lcp heatmaps draws LCP models only")
    if select_device(args.gpu_id) == "cuda":
        model = model.cuda(args.gpu_id)
    model.eval()

    pictures = render_crux_heatmaps(model, dataset, args.count)
    for target, (_, png) in zip(targets, pictures):
        with atomic_path(target, overwrite=True) as tmp:
            tmp.write_bytes(png)
    for stale in set(existing) - set(targets):
        stale.unlink(missing_ok=True)
    print(f"{len(targets)} crux heat map{'s' * (len(targets) != 1)} written to {out_dir}")
    return 0
