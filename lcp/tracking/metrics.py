"""MLflow metric names and units: AP in percent, no sentinel values, a loss series per training mode.

mmdet reports COCO AP as fractions (bbox_mAP 0.312) and -1 for an area range without
ground truth; the paper and this project's reports give AP in percent. Every AP metric lcp
logs is in percent, under COCO's names:

    bbox_mAP -> AP, bbox_mAP_50 -> AP50, bbox_mAP_75 -> AP75,
    bbox_mAP_s / _m / _l -> AP_small / AP_medium / AP_large, class-wise AP -> AP/<class>

with the prefix test/ (an evaluation run) or val/ (evaluation during training). A value
below 0, NaN or None (nothing to measure) is left out, never plotted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

AP_NAMES = {
    "bbox_mAP": "AP",
    "bbox_mAP_50": "AP50",
    "bbox_mAP_75": "AP75",
    "bbox_mAP_s": "AP_small",
    "bbox_mAP_m": "AP_medium",
    "bbox_mAP_l": "AP_large",
}
CLASSWISE_AP = "AP"  # <prefix>/AP/<class>


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def ap_percent(value: Any) -> float | None:
    """A fraction AP as percent; None for mmdet's -1, NaN or None (nothing to measure)."""
    if not is_number(value) or value < 0:
        return None
    return 100.0 * float(value)


def ap_metrics(results: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """The AP entries of mmdet's results ({bbox_mAP: 0.31, ...}) as {<prefix>/AP: 31.0, ...}."""
    from lcp.tracking.params import safe_key

    metrics = {}
    for key, name in AP_NAMES.items():
        value = ap_percent(results.get(key))
        if value is not None:
            metrics[safe_key(f"{prefix}/{name}")] = value
    return metrics


def classwise_metrics(table: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """{class: fraction AP} as {<prefix>/AP/<class>: percent}, classes without a value left out."""
    from lcp.tracking.params import safe_key

    return {
        safe_key(f"{prefix}/{CLASSWISE_AP}/{cls}"): value
        for cls, value in ((cls, ap_percent(ap)) for cls, ap in table.items())
        if value is not None
    }


def evaluation_metrics(metrics: Mapping[str, Any], prefix: str = "test") -> dict[str, float]:
    """`lcp test` metrics json -> MLflow metrics: test/AP, test/AP50, ..., test/AP/<class> (percent),
    test/num_images, and for an LCP model test/crux_mask_mean, ... from its "crux_health"."""
    from lcp.tracking.params import safe_key

    flat = ap_metrics(metrics, prefix)
    flat.update(classwise_metrics(metrics.get("classwise") or {}, prefix))
    health = metrics.get("crux_health")
    if isinstance(health, Mapping):
        for name, number in health.items():
            if name.startswith("mask_") and is_number(number):
                flat[safe_key(f"{prefix}/crux_{name}")] = float(number)
    for key, value in metrics.items():
        if key not in AP_NAMES and key not in ("classwise", "crux_health") and is_number(value):
            flat[safe_key(f"{prefix}/{key}")] = float(value)
    return flat


def loss_series(name: str, train_mode: str | None) -> str:
    """train/<learner>/<term> while an LCP model trains one learner (train/catch_up/kl_loss,
    train/crux/loss_rpn_cls, ...: the train mode without its _learner), else train/<term>."""
    return f"train/{train_mode.removesuffix('_learner')}/{name}" if train_mode else f"train/{name}"
