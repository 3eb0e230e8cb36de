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

from lcp.apis.options import add_cfg_options, parse_cfg_options

HELP = "draw an LCP checkpoint's crux masks on the first test images (crux_heatmap_<i>.png)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="mmdet config file of an LCP model (its data.test is drawn)")
    parser.add_argument("checkpoint", help="checkpoint file (.pth)")
    parser.add_argument("--out-dir", required=True, help="folder for crux_heatmap_0.png ... (may exist)")
    parser.add_argument("--count", type=int, default=4, help="number of test images drawn (default 4)")
    add_cfg_options(parser)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace crux_heatmap_*.png files already in --out-dir"
    )
    parser.add_argument("--gpu-id", type=int, default=0, help="GPU to use when there is one (default 0)")


def main(args: argparse.Namespace) -> int:
    from lcp.report.heatmaps import write_crux_heatmaps

    pictures = write_crux_heatmaps(
        args.config,
        args.checkpoint,
        args.out_dir,
        count=args.count,
        overwrite=args.overwrite,
        cfg_options=parse_cfg_options(args.cfg_options),
        gpu_id=args.gpu_id,
    )
    print(f"{len(pictures)} crux heat map{'s' * (len(pictures) != 1)} written to {args.out_dir}")
    return 0
