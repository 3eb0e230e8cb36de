"""Crux heat-map pictures: what the crux learner keeps of a few test images.

Each picture shows the image, the crux learner's soft mask m on the fixed 0..1 scale and
on its own min..max range (the numbers in the title: a flat mask shows a range like
0.0087..0.0093), and the crux the detector sees (the image with masked pixels faded to the
mean colour, as img * m does on the normalised image). A collapsed mask (see
lcp.hooks.crux_health) gets the verdict as a red headline.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lcp.io import atomic_path


def _unwrap(value):
    """The tensor or dict inside mmcv DataContainers and MultiScaleFlipAug's lists."""
    from mmcv.parallel import DataContainer

    while isinstance(value, (list, tuple)):
        value = value[0]
    return value.data if isinstance(value, DataContainer) else value


def crux_masks(model, dataset, count: int) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(file name, image HxWx3 uint8 RGB, mask HxW float, mean colour RGB) of the first test samples."""
    import torch

    detector = getattr(model, "module", model)
    crux_learner = detector.crux_learner
    parameter = next(crux_learner.parameters())
    was_training = crux_learner.training
    crux_learner.eval()
    pictures = []
    try:
        for index in range(min(count, len(dataset))):
            sample = dataset[index]
            img = _unwrap(sample["img"])
            meta = _unwrap(sample["img_metas"])
            with torch.no_grad():
                mask = crux_learner.mask(img[None].to(device=parameter.device, dtype=parameter.dtype))
            height, width = meta["img_shape"][:2]
            norm = meta.get("img_norm_cfg", {"mean": np.zeros(3), "std": np.ones(3), "to_rgb": False})
            mean = np.asarray(norm["mean"], dtype=np.float64)
            image = img.permute(1, 2, 0).float().cpu().numpy() * np.asarray(norm["std"]) + mean
            if not norm.get("to_rgb", False):  # the tensor holds BGR
                image, mean = image[..., ::-1], mean[::-1]
            image = np.clip(image[:height, :width], 0, 255).astype(np.uint8)
            pictures.append(
                (
                    os.path.basename(meta.get("ori_filename") or meta.get("filename") or f"{index}"),
                    image,
                    mask[0, 0, :height, :width].float().cpu().numpy(),
                    mean,
                )
            )
    finally:
        crux_learner.train(was_training)
    return pictures


def render_crux_heatmap(name: str, image: np.ndarray, mask: np.ndarray, mean: np.ndarray) -> bytes:
    """One PNG: the image, the mask on the fixed 0..1 scale, the mask on its own min..max range
    (the numbers in the title), and the crux; a collapsed mask gets its verdict as a red headline."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from lcp.hooks.crux_health import collapse_verdict, mask_statistics

    stats = mask_statistics(torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None])
    verdict = collapse_verdict(stats) if stats else None
    low, high = float(mask.min()), float(mask.max())
    figure, axes = plt.subplots(1, 4, figsize=(13, 3.6 if verdict else 3.3))
    axes[0].imshow(image)
    axes[0].set_title(name, fontsize=8)
    fixed = axes[1].imshow(mask, cmap="inferno", vmin=0.0, vmax=1.0)
    axes[1].set_title(f"crux mask m, scale 0..1 (mean {mask.mean():.3g})", fontsize=8)
    figure.colorbar(fixed, ax=axes[1], fraction=0.046)
    own = axes[2].imshow(mask, cmap="viridis", vmin=low, vmax=high if high > low else low + 1e-12)
    axes[2].set_title(f"m on its own range {low:.3g}..{high:.3g}\n(spread {high - low:.2g})", fontsize=8)
    own_bar = figure.colorbar(own, ax=axes[2], fraction=0.046, format="%.3g")
    if high - low < 1e-9 * max(abs(high), 1e-30):
        own_bar.set_ticks([low])  # one value: one tick, not five equal labels
    crux = image * mask[..., None] + mean * (1 - mask[..., None])  # a masked pixel becomes the mean
    axes[3].imshow(np.clip(crux, 0, 255).astype(np.uint8))
    axes[3].set_title("crux (img * m)", fontsize=8)
    for axis in axes:
        axis.axis("off")
    if verdict:
        headline = verdict.replace("; ", ";\n", 1)
        figure.suptitle(headline, color="#c00000", fontsize=9)
        figure.tight_layout(rect=(0, 0, 1, 0.9))
    else:
        figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def render_crux_heatmaps(model, dataset, count: int) -> list[tuple[str, bytes]]:
    """(file name, PNG bytes) of the crux learner's masks on the first `count` samples of dataset."""
    return [
        (name, render_crux_heatmap(name, image, mask, mean))
        for name, image, mask, mean in crux_masks(model, dataset, count)
    ]


def save_crux_heatmaps(model, dataset_cfg: Mapping[str, Any], out_dir: str | os.PathLike, count: int = 4) -> list[Path]:
    """Write `count` PNG pictures of the crux learner's masks on the test set to out_dir (crux_<image>.png)."""
    from mmdet.datasets import build_dataset

    from lcp.apis.streams import annotation_loading_unprinted

    with annotation_loading_unprinted():
        dataset = build_dataset(dict(dataset_cfg, test_mode=True))
    written = []
    for name, png in render_crux_heatmaps(model, dataset, count):
        path = Path(out_dir) / f"crux_{Path(name).stem}.png"
        with atomic_path(path) as tmp:
            tmp.write_bytes(png)
        written.append(path)
    return written
