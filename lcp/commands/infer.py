"""`lcp infer`: detect objects in images and draw what the detector looked at.

For each image IMG, OUT_DIR gets IMG_STEM.json - {"image", "width", "height", "score_thr",
"detections": [{"class", "score", "bbox": [x1, y1, x2, y2]}, ...]} with the detections at
or above --score-thr - and IMG_STEM.jpg: the image with those boxes, and for an LCP
detector the crux learner's soft mask laid over it as a heat map (red: regions the crux
learner keeps for detection, blue: regions it suppresses); an image under 400 px is drawn
enlarged by a whole factor, so that the labels can be read. No output may replace an input
image or lie in an input folder. Every input's file type is checked before the model loads,
and the outputs are made in a temporary folder beside OUT_DIR and moved into it once all
images are done, so a failed run leaves OUT_DIR as it was and its rerun is not refused.
"""

from __future__ import annotations

import argparse

from lcp.apis.options import add_cfg_options, parse_cfg_options

HELP = "detect objects in images; write json detections and pictures with boxes and the crux heat map"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="mmdet config file the checkpoint was trained with")
    parser.add_argument("checkpoint", help="checkpoint file (.pth)")
    parser.add_argument("images", nargs="+", help="image files, or folders whose images are all used")
    parser.add_argument("--out-dir", required=True, help="folder for the json and picture of each image")
    parser.add_argument("--score-thr", type=float, default=0.3, help="lowest score kept (default 0.3)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs in --out-dir")
    add_cfg_options(parser)
    parser.add_argument("--gpu-id", type=int, default=0, help="GPU to use when there is one (default 0)")


def main(args: argparse.Namespace) -> int:
    from lcp.apis.inference import infer_images

    images = infer_images(
        args.config,
        args.checkpoint,
        args.images,
        args.out_dir,
        score_thr=args.score_thr,
        overwrite=args.overwrite,
        cfg_options=parse_cfg_options(args.cfg_options),
        gpu_id=args.gpu_id,
    )
    print(f"{len(images)} images -> {args.out_dir}")
    return 0
