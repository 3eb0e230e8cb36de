"""Running a detector over a data set, and COCO bbox metrics with per-class AP as numbers.

mmdet's CocoDataset.evaluate only prints its class-wise table; `coco_bbox_metrics` runs the
same COCOeval with the same settings (all images and categories of the data set, maxDets
100/300/1000, IoU 0.50:0.95) and returns the overall and per-class values.
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import Any

import numpy as np

SUMMARY_KEYS = ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l")


def predict_dataset(model, data_loader, desc: str = "test") -> list:
    """The model's (rescaled) results for every sample of the loader, in order (with its
    progress on stderr: a bar on a terminal, lines in a job log)."""
    import torch

    from lcp.progress import progress

    model.eval()
    results: list = []
    for data in progress(data_loader, desc=desc, unit="batch"):
        with torch.no_grad():
            results.extend(model(return_loss=False, rescale=True, **data))
    return results


def coco_bbox_metrics(dataset, results: list, iou_thrs: list[float] | None = None) -> dict[str, Any]:
    """{"bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s/m/l", "classwise": {name: AP}}.

    AP values are in [0, 1]; a class without ground truth in the data set has AP None.
    `dataset` is an mmdet CocoDataset in test mode and `results` its per-image detections
    (lists of per-class (n, 5) arrays), as from predict_dataset. `iou_thrs` replaces the
    IoU thresholds 0.50:0.95 (mmdet's eval option): AP and class-wise AP average over them,
    and AP50 or AP75 is None unless 0.5 or 0.75 is one of them.
    """
    from pycocotools.cocoeval import COCOeval

    if len(results) != len(dataset):
        raise ValueError(f"{len(results)} results for a data set of {len(dataset)} images")
    classes = list(dataset.CLASSES)
    detections = dataset._det2json(results)
    coco_gt = _evaluation_ground_truth(dataset.coco)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(detections) if detections else _no_detections(coco_gt)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.params.catIds = dataset.cat_ids
        evaluator.params.imgIds = dataset.img_ids
        evaluator.params.maxDets = [100, 300, 1000]
        if iou_thrs is not None:
            evaluator.params.iouThrs = np.array(iou_thrs, dtype=float)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    metrics: dict[str, Any] = {key: float(evaluator.stats[i]) for i, key in enumerate(SUMMARY_KEYS)}
    # precision: [IoU thresholds, recall points, categories, area ranges, max dets], its
    # categories in COCOeval's order (sorted ids), not necessarily the classes' (mmdet indexes
    # by class and swaps classes of a file whose ids do not ascend)
    precisions = evaluator.eval["precision"]
    evaluated = list(evaluator.params.catIds)
    classwise = {}
    for name, cat_id in zip(classes, dataset.cat_ids, strict=True):
        precision = precisions[:, :, evaluated.index(cat_id), 0, -1]
        precision = precision[precision > -1]
        classwise[name] = float(np.mean(precision)) if precision.size else None
    metrics["classwise"] = classwise
    # COCOeval reports -1 where there is nothing to measure (no ground truth in that range)
    for key in SUMMARY_KEYS:
        if metrics[key] < 0 or math.isnan(metrics[key]):
            metrics[key] = None
    return metrics


def coco_results_json(dataset, results: list) -> str:
    """The detections in COCO's results format (mmdet's `format_results`/`jsonfile_prefix` file)."""
    import json

    return json.dumps(dataset._det2json(results))


def _evaluation_ground_truth(coco):
    """The ground truth as COCOeval must see it: annotation ids 1..N and `ignore` boxes as crowd.

    COCOeval records a match by the matched box's id and takes an id of 0 for no match, so a
    detection of the box with id 0 counted as a false positive and the box as missed; it also
    replaces each box's `ignore` by its `iscrowd`, so a box flagged ignore, which mmdet's
    training leaves out, had to be found. Both are valid COCO files: evaluating a copy keeps
    the user's file as it is. A file without either is returned unchanged.
    """
    annotations = coco.dataset.get("annotations") or []
    renumber = any(not isinstance(ann.get("id"), int) or ann.get("id") <= 0 for ann in annotations)
    ignored = any(ann.get("ignore") and not ann.get("iscrowd") for ann in annotations)
    if not (renumber or ignored):
        return coco
    from pycocotools.coco import COCO

    copy = COCO()
    copy.dataset = {
        **coco.dataset,
        "annotations": [
            {**ann, "id": number, **({"iscrowd": 1} if ann.get("ignore") else {})}
            for number, ann in enumerate(annotations, start=1)
        ],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        copy.createIndex()
    return copy


def _no_detections(coco_gt):
    """An empty COCO result set for `coco_gt` (loadRes refuses an empty list): COCOeval then
    reports AP 0 wherever there is ground truth to miss and -1 where there is none, by its own
    rules (crowd boxes, categories, IoU thresholds) as with detections."""
    import copy

    from pycocotools.coco import COCO

    empty = COCO()
    empty.dataset = {
        "images": copy.deepcopy(coco_gt.dataset["images"]),
        "categories": copy.deepcopy(coco_gt.dataset["categories"]),
        "annotations": [],
    }
    empty.createIndex()
    return empty


def format_metrics(metrics: dict[str, Any]) -> str:
    def percent(value):
        return "  n/a" if value is None else f"{100 * value:5.1f}"

    lines = [
        "AP {}  AP50 {}  AP75 {}  (APs {}  APm {}  APl {})".format(*(percent(metrics[key]) for key in SUMMARY_KEYS))
    ]
    width = max((len(name) for name in metrics["classwise"]), default=0)
    lines += [f"  {name:<{width}}  AP {percent(ap)}" for name, ap in metrics["classwise"].items()]
    return "\n".join(lines)
