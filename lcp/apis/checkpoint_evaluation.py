"""A checkpoint on its config's test set (what `lcp test` does, as a library call): the outputs
checked before any work, the detections, and what is asked of them - a pickle, COCO's results
format, pictures, COCO bbox metrics with an LCP model's crux health - written; nothing printed.

lcp/commands/test.py documents the files and the metrics json.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lcp.apis.streams import annotation_loading_unprinted, stdout_to_stderr
from lcp.apis.tracking_request import TrackingRequest
from lcp.errors import LCPError
from lcp.io import check_parent_can_be_made


@dataclass(frozen=True)
class Evaluation:
    """What evaluate_checkpoint did: each output path is None unless it was written."""

    config: Any  # the mmcv Config the checkpoint was evaluated with
    checkpoint: str
    num_images: int
    metrics: dict[str, Any] | None  # coco_bbox_metrics (+ "crux_health", "eval_options"), when asked for
    out: str | None = None  # the raw detections (pickle)
    results_json: str | None = None  # the detections in COCO's results format
    show_dir: str | None = None  # one picture of detections per test image
    eval_out: str | None = None  # the metrics json
    tracking: TrackingRequest | None = None
    run_names: dict[str, Any] = field(default_factory=dict)  # the tracked run's scene/step/method/variant


@stdout_to_stderr
def evaluate_checkpoint(
    config: str,
    checkpoint: str,
    *,
    metrics: bool = False,
    eval_out: str | None = None,
    eval_options: Mapping[str, Any] | None = None,
    format_only: bool = False,
    out: str | None = None,
    show_dir: str | None = None,
    show_score_thr: float = 0.3,
    overwrite: bool = False,
    cfg_options: Mapping[str, Any] | None = None,
    fp16: bool = False,
    gpu_id: int = 0,
    workers: int | None = None,
    tracking: TrackingRequest | None = None,
) -> Evaluation:
    """Each keyword is the `lcp test` option of that name (`metrics`: --eval bbox; `eval_out` implies
    it; `eval_options` as lcp.apis.options.parse_eval_options returns them). `tracking` is only used
    with metrics, and only checked here: track_evaluation records the run. Nothing goes to stdout:
    what pycocotools and mmcv print there goes to stderr."""
    import mmcv
    from mmcv.parallel import MMDataParallel
    from mmdet.datasets import build_dataloader, build_dataset, replace_ImageToTensor
    from mmdet.utils import setup_multi_processes

    from lcp.apis.compat import accept_gpu_ids_in_mmcv_scatter
    from lcp.apis.config import built_from_settings, load_config
    from lcp.apis.evaluation import coco_bbox_metrics, coco_results_json, predict_dataset
    from lcp.apis.inference import build_test_model, checkpoint_classes, draw_detections
    from lcp.apis.options import select_device
    from lcp.datasets.config_checks import check_dataset_cfg
    from lcp.io import atomic_folder, atomic_path, check_folder_output, check_outside_sources, json_text, naming

    eval_options = dict(eval_options or {})
    metrics_wanted = bool(metrics or eval_out)
    results_json = _checked_outputs(
        metrics_wanted, eval_out, eval_options, format_only, out, show_dir, show_score_thr, overwrite
    )

    cfg = load_config(config, dict(cfg_options or {}))
    tracking = tracking if metrics_wanted else None
    run_names = tracking.run_names(cfg) if tracking else {}  # bad names fail before the evaluation
    accept_gpu_ids_in_mmcv_scatter()
    setup_multi_processes(cfg)
    device = select_device(gpu_id)
    fp16 = fp16 or cfg.get("fp16") is not None
    if fp16 and device != "cuda":  # mmcv's auto_fp16 would feed half images to float convolutions
        raise LCPError(
            f"{config}: fp16 testing runs half-precision kernels and no GPU is visible; "
            "drop --fp16 (or the config's fp16) to test on the CPU"
        )
    if device == "cuda":
        import torch

        # fixed input sizes (resize to img_scale, pad to 32) make cuDNN's autotuning pay off
        torch.backends.cudnn.benchmark = bool(cfg.get("cudnn_benchmark", False))

    test_cfg = cfg.data.test
    test_cfg.test_mode = True
    loader_cfg = dict(samples_per_gpu=1, workers_per_gpu=cfg.data.get("workers_per_gpu", 2), dist=False, shuffle=False)
    loader_cfg.update(cfg.data.get("test_dataloader", {}))
    if workers is not None:
        loader_cfg["workers_per_gpu"] = workers
    if loader_cfg["samples_per_gpu"] > 1:
        test_cfg.pipeline = replace_ImageToTensor(test_cfg.pipeline)
    check_dataset_cfg(test_cfg, for_evaluation=metrics_wanted)
    with annotation_loading_unprinted(), built_from_settings(config, "test data set"):
        dataset = build_dataset(test_cfg)
    sources = [config, checkpoint, dataset.ann_file, dataset.img_prefix or None]
    for path in (out, eval_out, results_json):
        if path:
            check_outside_sources(path, sources)
    if show_dir:
        check_folder_output(show_dir, overwrite, sources)
    data_loader = build_dataloader(dataset, **loader_cfg)

    model = build_test_model(cfg, checkpoint, fp16=fp16)
    trained_for = checkpoint_classes(checkpoint)
    if trained_for is not None and tuple(trained_for) != tuple(dataset.CLASSES):
        raise LCPError(
            f"{checkpoint}: trained for classes {list(trained_for)}, but the test set of "
            f"{config} has {list(dataset.CLASSES)}"
        )
    model.CLASSES = dataset.CLASSES
    model = MMDataParallel(model.cuda(gpu_id), device_ids=[gpu_id]) if device == "cuda" else MMDataParallel(model)

    health = None
    detector = getattr(model, "module", model)
    if metrics_wanted and getattr(detector, "crux_learner", None) is not None:
        from lcp.hooks.crux_health import MaskStatistics, MeasuredLoader

        health = MaskStatistics()  # the masks of the model's own passes over the test images
        data_loader = MeasuredLoader(data_loader, detector.crux_learner, health)
    results = predict_dataset(model, data_loader)
    values = None
    # Every output is made under a temporary name and all are renamed together at the end, so a
    # run stopped on the way (the show pictures and the COCO evaluation take long) publishes none.
    # They are published in the reverse order of entering: the show folder (whose last checks may
    # still refuse it) first, the eval json (what the workflow waits for) last.
    with contextlib.ExitStack() as outputs:
        staged = {path: outputs.enter_context(atomic_path(path)) for path in (eval_out, results_json, out) if path}
        if show_dir:
            folder = outputs.enter_context(atomic_folder(show_dir, overwrite=overwrite, sources=sources))
            draw_detections(detector, dataset, results, folder, show_score_thr)
        if out:
            with naming(out):
                mmcv.dump(results, str(staged[out]), file_format="pkl")
        if results_json:
            with naming(results_json):
                staged[results_json].write_text(coco_results_json(dataset, results), "utf-8")
        if metrics_wanted:
            values = coco_bbox_metrics(dataset, results, iou_thrs=eval_options.get("iou_thrs"))
            if health is not None:
                values["crux_health"] = _crux_health(health)
            if eval_options:
                values["eval_options"] = eval_options
            if eval_out:
                record = {**values, "num_images": len(dataset), "config": config, "checkpoint": checkpoint}
                with naming(eval_out):
                    staged[eval_out].write_text(json_text(record), encoding="utf-8")
    return Evaluation(
        config=cfg,
        checkpoint=checkpoint,
        num_images=len(dataset),
        metrics=values,
        out=out,
        results_json=results_json,
        show_dir=show_dir,
        eval_out=eval_out,
        tracking=tracking,
        run_names=run_names,
    )


def track_evaluation(evaluation: Evaluation) -> str | None:
    """Record a tracked evaluation as an MLflow run (lcp.tracking.log_evaluation, which prints where);
    the run id, or None when it is not tracked or the store is unreachable."""
    if evaluation.tracking is None:
        return None
    from lcp.tracking import log_evaluation

    return log_evaluation(
        evaluation.eval_out or {**evaluation.metrics, "num_images": evaluation.num_images},
        **evaluation.run_names,
        config=evaluation.config,
        checkpoint=evaluation.checkpoint,
        tracking_uri=evaluation.tracking.tracking_uri,
    )


def _checked_outputs(
    metrics_wanted: bool,
    eval_out: str | None,
    eval_options: dict,
    format_only: bool,
    out: str | None,
    show_dir: str | None,
    show_score_thr: float,
    overwrite: bool,
) -> str | None:
    """Refuse a request that cannot run or would replace a file, before any work; returns where
    the detections in COCO's results format go (the jsonfile_prefix's .bbox.json), if anywhere."""
    prefix = eval_options.get("jsonfile_prefix")
    if format_only and metrics_wanted:
        raise LCPError("--format-only writes the detections without evaluating; leave out --eval/--eval-out")
    if format_only and not prefix:
        raise LCPError(
            "--format-only: give where the results go, --eval-options jsonfile_prefix=PREFIX (writes PREFIX.bbox.json)"
        )
    if not (metrics_wanted or out or format_only or show_dir):
        raise LCPError("nothing to do: give --eval bbox, --eval-out JSON, --out PKL, --format-only and/or --show-dir")
    if not 0 <= show_score_thr <= 1:
        raise LCPError(f"--show-score-thr {show_score_thr}: must be between 0 and 1")
    if out and not out.endswith((".pkl", ".pickle")):
        raise LCPError(f"{out}: --out must be a .pkl file")
    results_json = f"{prefix}.bbox.json" if prefix else None
    named = {"--out": out, "--eval-out": eval_out, "jsonfile_prefix's results": results_json}
    first: dict[Path, str] = {}
    for what, path in named.items():
        if path and (other := first.setdefault(Path(path).resolve(), what)) != what:
            raise LCPError(f"{path}: both {other} and {what}; one file cannot hold both")
    for path in named.values():
        if path and Path(path).is_dir():
            raise LCPError(f"{path}: is a folder, not a file")
        if path and Path(path).exists() and not overwrite:
            raise LCPError(f"{path}: already exists; remove it or pass --overwrite")
        if path:
            check_parent_can_be_made(Path(path))  # refused now, not after the evaluation
    return results_json


def _crux_health(statistics) -> dict:
    """The metrics' "crux_health" entry (lcp.hooks.crux_health.health_record)."""
    from lcp.hooks.crux_health import health_record

    stats = statistics.summary()
    if stats is None:
        raise LCPError("crux health: the test set gave no crux masks to measure")
    return health_record(stats)
