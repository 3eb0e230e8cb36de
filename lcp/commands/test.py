"""`lcp test`: evaluate a checkpoint on a config's test set (mmdet's tools/test.py, single process).

COCO bbox AP, AP50, AP75 and class-wise AP are printed; --eval-out writes them as json:
{"bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l",
 "classwise": {class: AP}, "num_images", "config", "checkpoint"} (AP in [0, 1], None for a
class without ground truth).

For an LCP model (one with a crux learner) the json has "crux_health" as well: statistics of
the crux learner's masks over the test images, each cropped to its img_shape -
{"mask_mean", "mask_std", "mask_frac_above_half", "mask_spatial_std", "collapsed": bool,
"verdict": "crux learner collapsed: ..." or null} (see lcp.hooks.crux_health); a plain
detector has no such key.

As in mmdet's tools/test.py: --show-dir DIR draws each test image's detections above
--show-score-thr into DIR (same file names; made in a temporary folder beside DIR and moved
there at the end, never inside the test images' folder); --format-only writes the
detections in COCO's results format to PREFIX.bbox.json (--eval-options
jsonfile_prefix=PREFIX) without evaluating, e.g. for a benchmark server; --eval-options
jsonfile_prefix=PREFIX with --eval keeps that file beside the metrics, and iou_thrs=...
sets the IoU thresholds AP averages over (recorded in the json as "eval_options").
"""

from __future__ import annotations

import argparse

from lcp.apis.options import add_cfg_options, add_eval_options, parse_cfg_options, parse_eval_options
from lcp.commands.tracking_flags import add_tracking_arguments, tracking_request

HELP = "evaluate a checkpoint on the config's test set (COCO bbox AP, AP50, AP75, per class)"


def worker_count(text: str) -> int:
    """argparse type of --workers: a whole number >= 0 (mmdet's DataLoader fails deep inside on others)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="mmdet config file the checkpoint was trained with")
    parser.add_argument("checkpoint", help="checkpoint file (.pth)")
    parser.add_argument(
        "--eval",
        nargs="+",
        choices=["bbox"],
        default=[],
        help="metrics to compute and print (bbox: COCO AP, AP50, AP75, class-wise)",
    )
    parser.add_argument("--eval-out", metavar="JSON", help="write the metrics as json (implies --eval bbox)")
    add_eval_options(parser)
    parser.add_argument(
        "--format-only",
        action="store_true",
        help="only write the detections in COCO's results format to PREFIX.bbox.json, without "
        "evaluating (needs --eval-options jsonfile_prefix=PREFIX)",
    )
    parser.add_argument("--out", metavar="PKL", help="write the raw detections as a pickle file")
    parser.add_argument("--show-dir", metavar="DIR", help="draw each test image with its detections into DIR")
    parser.add_argument(
        "--show-score-thr", type=float, default=0.3, help="lowest score drawn with --show-dir (default 0.3)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing --out/--eval-out/results files and a --show-dir lcp wrote",
    )
    add_cfg_options(parser)
    parser.add_argument("--fp16", action="store_true", help="run the model in half precision (mmdet's fp16)")
    parser.add_argument("--gpu-id", type=int, default=0, help="GPU to use when there is one (default 0)")
    parser.add_argument(
        "--workers",
        type=worker_count,
        help="data-loader processes, 0 loads in the main process (default: the config's)",
    )
    add_tracking_arguments(parser, default_step="evaluate", checkpoint_upload=False)


def main(args: argparse.Namespace) -> int:
    from lcp.apis.checkpoint_evaluation import evaluate_checkpoint, track_evaluation
    from lcp.apis.evaluation import format_metrics

    evaluation = evaluate_checkpoint(
        args.config,
        args.checkpoint,
        metrics=bool(args.eval),
        eval_out=args.eval_out,
        eval_options=parse_eval_options(args.eval_options),
        format_only=args.format_only,
        out=args.out,
        show_dir=args.show_dir,
        show_score_thr=args.show_score_thr,
        overwrite=args.overwrite,
        cfg_options=parse_cfg_options(args.cfg_options),
        fp16=args.fp16,
        gpu_id=args.gpu_id,
        workers=args.workers,
        tracking=tracking_request(args),
    )
    if evaluation.out:
        print(f"detections written to {evaluation.out}")
    if evaluation.results_json:
        print(f"detections in COCO's results format written to {evaluation.results_json}")
    if evaluation.show_dir:
        count = evaluation.num_images
        print(f"{count} picture{'s' * (count != 1)} of detections written to {evaluation.show_dir}")
    if evaluation.metrics is not None:
        print(format_metrics(evaluation.metrics))
        if "crux_health" in evaluation.metrics:
            print(crux_health_lines(evaluation.metrics["crux_health"]))
        if evaluation.eval_out:
            print(f"metrics written to {evaluation.eval_out}")
    track_evaluation(evaluation)
    return 0


def crux_health_lines(record: dict) -> str:
    """The crux learner's mask statistics and verdict (lcp.hooks.crux_health.health_record)."""
    return (
        "crux learner: mask mean {mask_mean:.3g}, std {mask_std:.3g}, spatial std {mask_spatial_std:.3g}, "
        "{mask_frac_above_half:.1%} of pixels above 0.5\n".format(**record)
    ) + (record["verdict"] or "crux learner alive")
