"""Crux-learner health: is the crux learner's mask marking regions, or has it collapsed?

The crux learner's soft mask m = sigmoid(k * (h - mask_thr)) should keep some regions of an
image and fade others. A learner that never trains (or trains into a corner) gives a mask
that is the same on every pixel: stuck at 0 (its initialisation, h ~ 0, gives
sigmoid(-5) ~ 0.007), stuck at 1, or flat at any level. Then the crux branch sees a blank
or an unmasked image, and nothing else in training says so.

Statistics of masks (N, 1, H, W) in [0, 1], each image cropped to its valid area (img_shape,
i.e. without the padding):
- mask_mean, mask_std: over all valid pixels of all images;
- mask_frac_above_half: the fraction of those pixels above 0.5;
- mask_spatial_std: the mean over images of each image's own per-pixel std: how much the
  mask varies within an image. A flat mask has ~0.

collapse_verdict(stats) turns them into one sentence "crux learner collapsed: ..." or None.
Thresholds (fractions of the mask's 0..1 range):
- FLAT_SPATIAL_STD = 0.02. Measured on the demo's test images (tiny LCP config, seeds 0-2):
  PyTorch's default initialisation gives 0.0001-0.0006, and the mask-centred start (last
  bias = mask_thr, the mask at ~0.5) 0.005-0.009; a learner that has not moved from either
  start is below the threshold with a 2x margin. A mask that keeps a fraction p of an image
  and fades the rest has spatial std sqrt(p (1 - p)); 0.02 is p = 4e-4, a 21x21-pixel patch
  of a 1333x800 image, less than one small object. A mask marking 1% of the image is at 0.1.
- stuck at 0: mean < STUCK_LOW_MEAN = 0.02 and no pixel above 0.5: the crux image is the mean
  colour everywhere. Stuck at 1: mean > STUCK_HIGH_MEAN = 0.98 and no pixel below 0.5: the
  crux image is the image itself. (A mask averaging 0.985 that fades 1% of the image still
  marks something, hence the pixel condition on both sides.)

CruxHealthHook measures them on the training batches each epoch (and the crux learner's
gradient norm), logs them, and warns at the end of training when the mask has collapsed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mmcv.runner import HOOKS, Hook, get_dist_info

from lcp.errors import LCPError

FLAT_SPATIAL_STD = 0.02
STUCK_LOW_MEAN = 0.02
STUCK_HIGH_MEAN = 0.98
STAT_KEYS = ("mask_mean", "mask_std", "mask_frac_above_half", "mask_spatial_std")
LOG_PREFIX = "crux/"


class MaskStatistics:
    """Running sums of masks over batches; summary() gives the statistics of all of them.

    The sums stay tensors on the masks' device (float64), so update() never waits for the
    GPU; summary() reads them once.
    """

    # index of each running sum in the tensor
    _PIXELS, _SUM, _SQUARES, _ABOVE, _SPATIAL, _IMAGES = range(6)

    def __init__(self):
        self.sums = None

    def update(self, masks, img_shapes: Sequence[Sequence[int]] | None = None) -> None:
        """Add masks (N, 1, H, W) or (N, H, W); img_shapes[i][:2] is image i's valid (height, width)."""
        import torch

        masks = masks.detach()
        if masks.dim() == 4:
            masks = masks[:, 0]
        if masks.dim() != 3:
            raise ValueError(f"masks must be (N, 1, H, W) or (N, H, W), got shape {tuple(masks.shape)}")
        if img_shapes is not None and len(img_shapes) != masks.shape[0]:
            raise ValueError(f"{len(img_shapes)} image shapes for {masks.shape[0]} masks")
        rows = []
        for index in range(masks.shape[0]):
            mask = masks[index]
            if img_shapes is not None:
                height, width = (int(v) for v in img_shapes[index][:2])
                mask = mask[:height, :width]
            mask = mask.double()
            if mask.numel() == 0:
                continue
            rows.append(
                torch.stack(
                    [
                        mask.new_full((), float(mask.numel())),
                        mask.sum(),
                        (mask * mask).sum(),
                        (mask > 0.5).sum().double(),
                        mask.std(unbiased=False),
                        mask.new_ones(()),
                    ]
                )
            )
        if rows:
            batch = torch.stack(rows).sum(0)
            self.sums = batch if self.sums is None else self.sums + batch.to(self.sums.device)

    def all_reduce(self) -> None:
        """Sum the running sums over the processes of a distributed run (every rank must call it)."""
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return
        device = (
            self.sums.device
            if self.sums is not None
            else (torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu")
        )
        sums = self.sums if self.sums is not None else torch.zeros(6, dtype=torch.float64, device=device)
        dist.all_reduce(sums)
        self.sums = sums if float(sums[self._IMAGES]) > 0 else None

    def summary(self) -> dict[str, float] | None:
        """{mask_mean, mask_std, mask_frac_above_half, mask_spatial_std}; None before any mask."""
        if self.sums is None:
            return None
        pixels, total, squares, above, spatial, images = self.sums.tolist()
        mean = total / pixels
        variance = max(squares / pixels - mean * mean, 0.0)
        return {
            "mask_mean": mean,
            "mask_std": math.sqrt(variance),
            "mask_frac_above_half": above / pixels,
            "mask_spatial_std": spatial / images,
        }


def mask_statistics(masks, img_shapes: Sequence[Sequence[int]] | None = None) -> dict[str, float] | None:
    """The statistics of one batch of masks (see MaskStatistics)."""
    statistics = MaskStatistics()
    statistics.update(masks, img_shapes)
    return statistics.summary()


def _number(value: float) -> str:
    return f"{value:.2g}" if abs(value) < 0.01 else f"{value:.3g}"


def collapse_verdict(stats: Mapping[str, float]) -> str | None:
    """One sentence "crux learner collapsed: ..." naming the numbers, or None when the mask is alive."""
    mean, std = stats["mask_mean"], stats["mask_std"]
    above, spatial = stats["mask_frac_above_half"], stats["mask_spatial_std"]
    if not all(math.isfinite(stats[key]) for key in STAT_KEYS if key in stats):  # NaN fails every test below
        return (
            f"crux learner collapsed: the mask is not finite (mean {_number(mean)}, std {_number(std)}); "
            "the crux learner diverged (its weights or inputs hold NaN or inf)"
        )
    flat = spatial < FLAT_SPATIAL_STD
    level = (
        f"{_number(mean)} on every pixel (std {_number(std)})"
        if flat
        else f"{_number(mean)} on average (std {_number(std)})"
    )
    if mean < STUCK_LOW_MEAN and above == 0:
        return (
            f"crux learner collapsed: the mask is {level} and no pixel is above 0.5; "
            "it marks no regions and the crux branch sees the mean colour everywhere"
        )
    if mean > STUCK_HIGH_MEAN and above == 1:
        return (
            f"crux learner collapsed: the mask is {level} and no pixel is below 0.5; "
            "it marks no regions and the crux branch sees the whole image unmasked"
        )
    if flat:
        return (
            f"crux learner collapsed: the mask is flat, {_number(mean)} on every pixel (varying by "
            f"{_number(spatial)} within an image, under {FLAT_SPATIAL_STD}); it scales the whole image "
            "alike and marks no regions"
        )
    return None


def health_record(stats: Mapping[str, float]) -> dict[str, Any]:
    """The `lcp test --eval-out` entry: the statistics, collapsed and verdict."""
    verdict = collapse_verdict(stats)
    return {**{key: float(stats[key]) for key in STAT_KEYS}, "collapsed": verdict is not None, "verdict": verdict}


def _unwrap(value):
    """The tensor or list inside mmcv DataContainers (first device) and MultiScaleFlipAug's lists."""
    from mmcv.parallel import DataContainer

    if isinstance(value, DataContainer):
        value = value.data
        return value[0] if value and isinstance(value, list) else value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], DataContainer):
        return _unwrap(value[0])
    return value


def batch_images(data: Mapping[str, Any]):
    """(img (N, 3, H, W), [img_shape of each image] or None) of a data-loader batch, train or test."""
    import torch

    img = _unwrap(data["img"])
    if isinstance(img, (list, tuple)):  # test time augmentation: the first augmentation
        img = img[0]
    if not isinstance(img, torch.Tensor):
        raise LCPError(f"crux health: the batch's img is a {type(img).__name__}, not a tensor")
    if img.dim() == 3:
        img = img[None]
    metas = _unwrap(data.get("img_metas")) if data.get("img_metas") is not None else None
    if isinstance(metas, (list, tuple)) and metas and isinstance(metas[0], (list, tuple)):
        metas = metas[0]  # test: one list of metas per augmentation
    if isinstance(metas, Mapping):
        metas = [metas]
    shapes = None
    if metas and len(metas) == img.shape[0] and all("img_shape" in meta for meta in metas):
        shapes = [meta["img_shape"] for meta in metas]
    return img, shapes


def crux_masks_of_batch(crux_learner, data: Mapping[str, Any]):
    """(masks (N, 1, H, W), img_shapes) of a batch: crux_learner.mask on its images, without autograd."""
    import torch

    img, shapes = batch_images(data)
    parameter = next(crux_learner.parameters())
    with torch.no_grad():
        masks = crux_learner.mask(img.to(device=parameter.device, dtype=parameter.dtype, non_blocking=True))
    return masks, shapes


class GradNorm:
    """Mean L2 norm of a module's gradient over the iterations where it had one (kept on the device)."""

    def __init__(self):
        self.total = None
        self.count = None

    def update(self, parameters: Iterable) -> None:
        import torch

        grads = [p.grad.detach() for p in parameters if p.grad is not None]
        if not grads:
            return
        norms = torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])
        norm = torch.linalg.vector_norm(norms)
        finite = torch.isfinite(norm)  # a skipped fp16 step has inf/nan gradients: not counted
        value = torch.where(finite, norm, torch.zeros_like(norm)).double()
        self.total = value if self.total is None else self.total + value
        self.count = finite.double() if self.count is None else self.count + finite.double()

    def all_reduce(self) -> None:
        """Gradients are the same on every rank after DDP's all-reduce: nothing to combine."""

    def mean(self) -> float | None:
        if self.total is None or float(self.count) == 0:
            return None
        return float(self.total) / float(self.count)


class HeatmapTap:
    """Keeps the first heat map h the crux learner computes after arm(), through a forward hook on
    its h_evaluation; `available` is False for a crux learner without h_evaluation, k and mask_thr."""

    def __init__(self, crux_learner):
        heat = getattr(crux_learner, "h_evaluation", None)
        usable = heat is not None and hasattr(crux_learner, "k") and hasattr(crux_learner, "mask_thr")
        self._handle = heat.register_forward_hook(self._keep) if usable else None
        self._armed = False
        self._heatmap = None

    @property
    def available(self) -> bool:
        return self._handle is not None

    def _keep(self, module, inputs, output) -> None:
        if self._armed:
            self._heatmap = output.detach()
            self._armed = False

    def arm(self) -> None:
        self._heatmap = None
        self._armed = self.available

    def take(self):
        heatmap, self._heatmap, self._armed = self._heatmap, None, False
        return heatmap

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def add_batch(statistics: MaskStatistics, crux_learner, data: Mapping[str, Any], heatmap=None) -> None:
    """Add the masks of a batch's images to statistics: from `heatmap`, the heat map of the pass that
    processed the batch (its first N rows are the batch's N images), when it fits; else from
    crux_learner.mask on the images again."""
    img, shapes = batch_images(data)
    if heatmap is not None and heatmap.shape[0] >= img.shape[0] and heatmap.shape[-2:] == img.shape[-2:]:
        masks = crux_learner.mask_from_heatmap(heatmap[: img.shape[0]].float())
    else:
        masks, shapes = crux_masks_of_batch(crux_learner, data)
    statistics.update(masks, shapes)


class MeasuredLoader:
    """Iterates a (test) data loader and adds the crux masks of each batch to `statistics`, taken
    from the heat map of the model's own pass over the batch (HeatmapTap)."""

    def __init__(self, data_loader, crux_learner, statistics: MaskStatistics):
        self.data_loader = data_loader
        self.crux_learner = crux_learner
        self.statistics = statistics

    def __len__(self) -> int:
        return len(self.data_loader)

    def __iter__(self):
        tap = HeatmapTap(self.crux_learner)
        try:
            for data in self.data_loader:
                tap.arm()
                yield data  # the model runs on it before the next item is asked for
                add_batch(self.statistics, self.crux_learner, data, tap.take())
        finally:
            tap.remove()


@HOOKS.register_module()
class CruxHealthHook(Hook):
    """Log the crux learner's mask statistics and gradient norm per epoch; warn when it collapsed.

    Masks: every `interval` iterations (the first of each epoch included) the statistics of
    the masks of the batch's images. They are not computed again: a forward hook on
    crux_learner.h_evaluation keeps the heat map h of the iteration's first crux-learner call
    (the batch's images in both modes: crux mode runs crux_learner(img), catch-up mode
    crux_learner(cat[img, img_df]) or img first; the first N rows are taken), and the mask is
    sigmoid(k * (h - mask_thr)) of it: a few element-wise operations. A crux learner without
    h_evaluation, or an iteration where it was not called, falls back to crux_learner.mask on
    the batch's images (a second crux-learner pass, without autograd).

    Gradient: after mmcv's OptimizerHook, which runs backward and the step (this hook's
    NORMAL priority is below its ABOVE_NORMAL, and the step leaves .grad in place), the crux
    learner's gradient L2 norm when it has one (crux_learner mode); kept on the device, read
    once per epoch.

    After each training epoch it writes crux/mask_mean, crux/mask_std,
    crux/mask_frac_above_half, crux/mask_spatial_std and crux/grad_norm (the mean over the
    epoch's iterations with gradients; absent in a catch-up epoch) to the training log, and to
    runner.log_buffer.output, where an evaluation in the same epoch (mmdet's EvalHook, which
    runs after this hook) takes them into its entry of the json log. After the run it logs the verdict of the
    last epoch's statistics: a WARNING "crux learner collapsed: ..." or an INFO line that it
    is alive. `epochs` (epoch -> values) and `verdict` / `final_stats` are what
    LCPMlflowLoggerHook reads.
    """

    def __init__(self, interval: int = 1):
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            raise LCPError(f"CruxHealthHook: interval = {interval!r} is not a positive integer")
        self.interval = interval
        self.epochs: dict[int, dict[str, float]] = {}
        self.final_stats: dict[str, float] | None = None
        self.verdict: str | None = None
        self._masks = MaskStatistics()
        self._grads = GradNorm()
        self._tap: HeatmapTap | None = None

    @staticmethod
    def _crux_learner(runner):
        return getattr(getattr(runner.model, "module", runner.model), "crux_learner", None)

    def before_run(self, runner) -> None:
        crux_learner = self._crux_learner(runner)
        if crux_learner is None:
            model = getattr(runner.model, "module", runner.model)
            raise LCPError(
                f"CruxHealthHook: the model {type(model).__name__} has no crux learner; use it with LCPDetector"
            )
        self._tap = HeatmapTap(crux_learner)

    def before_train_epoch(self, runner) -> None:
        self._masks = MaskStatistics()
        self._grads = GradNorm()

    def _measured(self, runner) -> bool:
        return runner.inner_iter % self.interval == 0

    def before_train_iter(self, runner) -> None:
        if self._measured(runner):
            self._tap.arm()

    def after_train_iter(self, runner) -> None:
        crux_learner = self._crux_learner(runner)
        self._grads.update(crux_learner.parameters())
        heatmap = self._tap.take()
        data = getattr(runner, "data_batch", None)
        if data is not None and self._measured(runner):
            add_batch(self._masks, crux_learner, data, heatmap)

    def after_train_epoch(self, runner) -> None:
        epoch = runner.epoch + 1  # mmcv counts the epoch as done only after these hooks
        self._masks.all_reduce()
        stats = self._masks.summary()
        grad_norm = self._grads.mean()
        values = dict(stats or {})
        if grad_norm is not None:
            values["grad_norm"] = grad_norm
        if not values:
            return
        self.epochs[epoch] = values
        if stats is not None:
            self.final_stats = stats
        # They join the epoch's evaluation entry, if there is one, without making an entry of their own:
        # mmdet's analyze_logs takes every 'val' entry for an evaluation and fails on one without bbox_mAP.
        for key, value in values.items():
            runner.log_buffer.output[LOG_PREFIX + key] = value
        parts = [f"{key} {value:.4g}" for key, value in values.items()]
        runner.logger.info(f"CruxHealthHook: epoch {epoch}: crux learner " + ", ".join(parts))

    def after_run(self, runner) -> None:
        if self._tap is not None:
            self._tap.remove()
        if self.final_stats is None:
            runner.logger.info("CruxHealthHook: no crux masks were measured; no verdict")
            return
        self.verdict = collapse_verdict(self.final_stats)
        if get_dist_info()[0] != 0:
            return
        if self.verdict:
            runner.logger.warning(f"CruxHealthHook: {self.verdict}")
        else:
            runner.logger.info(
                "CruxHealthHook: crux learner alive: mask mean {mask_mean:.3g}, spatial std "
                "{mask_spatial_std:.3g}, {mask_frac_above_half:.1%} of pixels above 0.5".format(**self.final_stats)
            )


def find_health_hook(runner) -> CruxHealthHook | None:
    return next((hook for hook in runner.hooks if isinstance(hook, CruxHealthHook)), None)
