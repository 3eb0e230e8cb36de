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
from pathlib import Path

from lcp.apis.options import add_cfg_options, add_eval_options, parse_cfg_options, parse_eval_options
from lcp.commands.tracking_flags import add_tracking_arguments, tracking_names, tracking_wanted
from lcp.errors import LCPError

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


def crux_health(statistics) -> dict:
    """The eval json's "crux_health" entry; prints the verdict."""
    from lcp.hooks.crux_health import health_record

    stats = statistics.summary()
    if stats is None:
        raise LCPError("crux health: the test set gave no crux masks to measure")
    record = health_record(stats)
    print(
        "crux learner: mask mean {mask_mean:.3g}, std {mask_std:.3g}, spatial std {mask_spatial_std:.3g}, "
        "{mask_frac_above_half:.1%} of pixels above 0.5".format(**record)
    )
    print(record["verdict"] or "crux learner alive")
    return record


def _checked_outputs(args: argparse.Namespace, eval_options: dict) -> dict[str, str]:
    """The files the run writes (besides --show-dir), each checked before any work."""
    metrics_wanted = bool(args.eval or args.eval_out)
    prefix = eval_options.get("jsonfile_prefix")
    if args.format_only and metrics_wanted:
        raise LCPError("--format-only writes the detections without evaluating; leave out --eval/--eval-out")
    if args.format_only and not prefix:
        raise LCPError(
            "--format-only: give where the results go, --eval-options jsonfile_prefix=PREFIX (writes PREFIX.bbox.json)"
        )
    if not (metrics_wanted or args.out or args.format_only or args.show_dir):
        raise LCPError("nothing to do: give --eval bbox, --eval-out JSON, --out PKL, --format-only and/or --show-dir")
    if not 0 <= args.show_score_thr <= 1:
        raise LCPError(f"--show-score-thr {args.show_score_thr}: must be between 0 and 1")
    if args.out and not args.out.endswith((".pkl", ".pickle")):
        raise LCPError(f"{args.out}: --out must be a .pkl file")
    outputs = {"out": args.out, "eval_out": args.eval_out, "results": f"{prefix}.bbox.json" if prefix else None}
    for path in outputs.values():
        if path and Path(path).exists() and not args.overwrite:
            raise LCPError(f"{path}: already exists; remove it or pass --overwrite")
    return {name: path for name, path in outputs.items() if path}


def main(args: argparse.Namespace) -> int:
    import mmcv
    from mmcv.parallel import MMDataParallel
    from mmdet.datasets import build_dataloader, build_dataset, replace_ImageToTensor
    from mmdet.utils import setup_multi_processes

    from lcp.apis.compat import accept_gpu_ids_in_mmcv_scatter
    from lcp.apis.config import load_config
    from lcp.apis.evaluation import coco_bbox_metrics, coco_results_json, format_metrics, predict_dataset
    from lcp.apis.inference import build_test_model, checkpoint_classes, draw_detections
    from lcp.apis.options import select_device
    from lcp.datasets.config_checks import check_dataset_cfg
    from lcp.io import atomic_path, check_folder_output, check_outside_sources, write_json, write_text

    eval_options = parse_eval_options(args.eval_options)
    outputs = _checked_outputs(args, eval_options)
    metrics_wanted = bool(args.eval or args.eval_out)

    cfg = load_config(args.config, parse_cfg_options(args.cfg_options))
    track = metrics_wanted and tracking_wanted(args)
    names = tracking_names(args, cfg) if track else {}  # bad names fail before the evaluation
    accept_gpu_ids_in_mmcv_scatter()
    setup_multi_processes(cfg)
    device = select_device(args.gpu_id)
    if device == "cuda":
        import torch

        # fixed input sizes (resize to img_scale, pad to 32) make cuDNN's autotuning pay off
        torch.backends.cudnn.benchmark = bool(cfg.get("cudnn_benchmark", False))

    test_cfg = cfg.data.test
    test_cfg.test_mode = True
    loader_cfg = dict(samples_per_gpu=1, workers_per_gpu=cfg.data.get("workers_per_gpu", 2), dist=False, shuffle=False)
    loader_cfg.update(cfg.data.get("test_dataloader", {}))
    if args.workers is not None:
        loader_cfg["workers_per_gpu"] = args.workers
    if loader_cfg["samples_per_gpu"] > 1:
        test_cfg.pipeline = replace_ImageToTensor(test_cfg.pipeline)
    check_dataset_cfg(test_cfg)
    dataset = build_dataset(test_cfg)
    sources = [args.config, args.checkpoint, dataset.ann_file, dataset.img_prefix or None]
    for path in outputs.values():
        check_outside_sources(path, sources)
    if args.show_dir:
        check_folder_output(args.show_dir, args.overwrite, sources)
    data_loader = build_dataloader(dataset, **loader_cfg)

    model = build_test_model(cfg, args.checkpoint, fp16=args.fp16 or cfg.get("fp16") is not None)
    trained_for = checkpoint_classes(args.checkpoint)
    if trained_for is not None and tuple(trained_for) != tuple(dataset.CLASSES):
        raise LCPError(
            f"{args.checkpoint}: trained for classes {list(trained_for)}, but the test set of "
            f"{args.config} has {list(dataset.CLASSES)}"
        )
    model.CLASSES = dataset.CLASSES
    model = (
        MMDataParallel(model.cuda(args.gpu_id), device_ids=[args.gpu_id]) if device == "cuda" else MMDataParallel(model)
    )

    health = None
    detector = getattr(model, "module", model)
    if metrics_wanted and getattr(detector, "crux_learner", None) is not None:
        from lcp.hooks.crux_health import MaskStatistics, MeasuredLoader

        health = MaskStatistics()  # the masks of the model's own passes over the test images
        data_loader = MeasuredLoader(data_loader, detector.crux_learner, health)
    results = predict_dataset(model, data_loader)
    if args.out:
        with atomic_path(args.out, overwrite=True) as tmp:
            mmcv.dump(results, str(tmp), file_format="pkl")
        print(f"detections written to {args.out}")
    if "results" in outputs:
        write_text(outputs["results"], coco_results_json(dataset, results))
        print(f"detections in COCO's results format written to {outputs['results']}")
    if args.show_dir:
        draw_detections(detector, dataset, results, args.show_dir, args.show_score_thr, args.overwrite, sources)
        print(f"{len(results)} picture{'s' * (len(results) != 1)} of detections written to {args.show_dir}")
    if metrics_wanted:
        metrics = coco_bbox_metrics(dataset, results, iou_thrs=eval_options.get("iou_thrs"))
        print(format_metrics(metrics))
        if health is not None:
            metrics["crux_health"] = crux_health(health)
        if eval_options:
            metrics["eval_options"] = eval_options
        if args.eval_out:
            write_json(
                args.eval_out,
                {**metrics, "num_images": len(dataset), "config": args.config, "checkpoint": args.checkpoint},
                overwrite=True,
            )
            print(f"metrics written to {args.eval_out}")
        if track:
            from lcp.tracking import log_evaluation

            log_evaluation(
                args.eval_out or {**metrics, "num_images": len(dataset)},
                **names,
                config=cfg,
                checkpoint=args.checkpoint,
                tracking_uri=args.tracking_uri,
            )
    return 0
