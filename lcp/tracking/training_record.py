"""What a tracked training records, as plain functions of what its runner holds: the params at the
start, the metrics of a logging point, of an epoch and of an evaluation, the final checkpoint.

LCPMlflowLoggerHook (lcp/tracking/hook.py) gathers those values from the runner, calls these and
sends the result; metric names and units are lcp.tracking.metrics'.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lcp.modes import CRUX
from lcp.tracking import metrics as run_metrics
from lcp.tracking import params as run_params

log = logging.getLogger("lcp.tracking")

# which splits' annotation files are the run's dataset inputs, and in what context
INPUT_CONTEXTS = {"train": "training", "val": "evaluation", "test": "evaluation"}
# log-buffer entries that are no evaluation result
NOT_EVAL_KEYS = {"time", "data_time", "memory", "eval_iter_num", "lr"}
HEALTH_PREFIX = "crux/"  # CruxHealthHook's keys in the log buffer: epoch metrics, not eval results


def resolved_config(meta: Mapping[str, Any] | None):
    """The config the runner trains with, from runner.meta['config'] (mmdet's train tools set it);
    None without one, or when it cannot be read (params are a record, not worth stopping training for)."""
    text = (meta or {}).get("config")
    if not text:
        return None
    from mmcv import Config

    try:
        return Config.fromstring(text, ".py")
    except Exception as exc:  # noqa: BLE001
        log.warning("MLflow: could not read the config from runner.meta (%s); config params not logged", exc)
        return None


def training_seed(meta: Mapping[str, Any] | None, cfg) -> Any:
    """The seed this training really uses: runner.meta's, else the config's."""
    return (meta or {}).get("seed", cfg.get("seed") if cfg else None)


def start_params(
    *,
    scene: str,
    step: str,
    method: str,
    variant: str | None,
    seed: Any,
    gpus: int,
    cfg,
    lr: float | None = None,
    deterministic: bool | None = None,
) -> dict[str, Any]:
    """The params of a new training run: its names, seed and gpus, the config's settings and data
    fingerprints (lcp.tracking.params), the degradation records beside the config's training and
    test images, package versions and git state. `lr`, the lr the optimizer was built with
    (optimizer_lr), replaces the config's; `deterministic`: `lcp train --deterministic` (runner.meta's)."""
    import torch

    # threads: a CPU training's result depends on torch's thread count (summation order), as on the seed
    params: dict[str, Any] = {
        "scene": scene,
        "step": step,
        "method": method,
        "seed": seed,
        "gpus": gpus,
        "threads": torch.get_num_threads(),
    }
    if variant:
        params["variant"] = variant
    if cfg is not None:
        params.update(run_params.training_params(cfg))
        data = cfg.get("data") or {}
        params.update(run_params.data_params(data))
        try:
            params.update(run_params.degradation_params(run_params.sidecars_of(data, splits=("train", "test"))))
        except Exception as exc:  # noqa: BLE001  an unreadable sidecar must not stop training
            log.warning("MLflow: degradation params not logged: %s", exc)
    if lr is not None:
        params["lr"] = str(lr)
    if deterministic is not None:  # cuDNN's algorithms: on a GPU as much a part of the result as the seed
        params["deterministic"] = str(bool(deterministic))
    params.update(run_params.package_versions())
    params.update(run_params.git_state())
    return params


def optimizer_lr(optimizer) -> float | None:
    """The lr `optimizer` was built with; None for mmcv's dict of optimizers. mmdet's auto_scale_lr
    scales the config's lr to the total batch (GPUs x samples_per_gpu) after runner.meta['config']
    was written, so that config's lr is not always the one trained with (0.02 in it, 0.04 on 2 GPUs)."""
    defaults = getattr(optimizer, "defaults", None)
    lr = defaults.get("lr") if isinstance(defaults, dict) else None
    return float(lr) if isinstance(lr, int | float) and not isinstance(lr, bool) else None


def iteration_metrics(
    losses: Mapping[str, float], schedule: Mapping[str, float], train_mode: str | None, images_per_s: float | None
) -> dict[str, float]:
    """One logging point: the loss terms (their means since the last point; one series per training
    mode), the lr and momentum (mmcv's learning_rate[/group], momentum[/group] as train/lr...,
    train/momentum...) and images/s."""
    metrics = {
        run_params.safe_key(run_metrics.loss_series(name, train_mode)): float(value) for name, value in losses.items()
    }
    for name, value in schedule.items():
        metrics[run_params.safe_key(f"train/{name.replace('learning_rate', 'lr')}")] = float(value)
    if images_per_s is not None:
        metrics["train/img_per_s"] = images_per_s
    return metrics


def epoch_metrics(
    *,
    train_mode: str | None,
    train_time: float,
    images: int,
    peak_gpu_mem_mib: float | None,
    crux_stats: Mapping[str, float],
) -> dict[str, float]:
    """One epoch: its training time and images/s, which learner trained (epoch/crux_learner_mode: 1 the
    crux learner, 0 the catch-up learner; none for a model without modes), peak GPU memory, and
    CruxHealthHook's statistics of the epoch as epoch/crux_<name>."""
    metrics = {}
    if train_time > 0:
        metrics["epoch/train_time_s"] = train_time
        metrics["epoch/img_per_s"] = images / train_time
    if train_mode is not None:
        metrics["epoch/crux_learner_mode"] = float(train_mode == CRUX)
    if peak_gpu_mem_mib is not None:
        metrics["epoch/peak_gpu_mem_mib"] = peak_gpu_mem_mib
    for name, value in crux_stats.items():
        metrics[f"epoch/crux_{name}"] = float(value)
    return metrics


def epoch_tags(train_mode: str | None, epoch: int) -> dict[str, str]:
    """lcp.train_mode.epoch_NNN: the learner the epoch trained (none for a model without modes)."""
    return {} if train_mode is None else {f"lcp.train_mode.epoch_{epoch:03d}": train_mode}


def eval_metrics(
    results: Mapping[str, Any], train_keys: Iterable[str], classwise: Mapping[str, Any]
) -> dict[str, float]:
    """An evaluation's metrics from the log buffer's averages: AP in percent (lcp.tracking.metrics),
    other numbers as val/<name>, a dataset's own {class: AP} and the class-wise AP table mmdet logged
    (`classwise`). Training losses, timings and CruxHealthHook's statistics in the buffer are left out."""
    train_keys = set(train_keys)
    results = {
        name: value
        for name, value in results.items()
        if name not in NOT_EVAL_KEYS and name not in train_keys and not name.startswith(HEALTH_PREFIX)
    }
    metrics = run_metrics.ap_metrics(results, "val")
    for name, value in results.items():
        if name in run_metrics.AP_NAMES:
            continue
        if isinstance(value, dict):  # a dataset that returns {class: AP} itself
            metrics.update(run_metrics.classwise_metrics(value, "val"))
        elif run_metrics.is_number(value):
            metrics[run_params.safe_key(f"val/{name}")] = float(value)
    metrics.update(run_metrics.classwise_metrics(classwise, "val"))
    return metrics


def final_checkpoint(work_dir: Path) -> Path | None:
    """The checkpoint a training ends with: latest.pth's target, else the newest epoch_N.pth."""
    latest = work_dir / "latest.pth"
    if latest.exists():
        return latest.resolve()
    numbered = sorted(work_dir.glob("epoch_*.pth"), key=lambda p: p.stat().st_mtime)
    return numbered[-1].resolve() if numbered else None
