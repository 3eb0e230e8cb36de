"""A tiny real training run for the tracking tests (tests/tracking/test_tracking_*.py).

A real mmcv EpochBasedRunner trains a toy detector (one weight; loss dicts like LCP's:
kl_loss in catch-up epochs, cascade-style terms in crux epochs; a real CruxLearner for
the heat maps) under the real TrainModeHook, TextLoggerHook and mmdet's EvalHook, which
evaluates the toy's fixed detections on a real 4-image COCO set with mmdet's CocoDataset.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from mmcv import Config
from mmcv.parallel import MMDataParallel
from mmcv.runner import HOOKS, EpochBasedRunner, Hook, build_optimizer
from mmdet.core import EvalHook
from mmdet.datasets import build_dataloader, build_dataset

import lcp.hooks  # noqa: F401  registers TrainModeHook
import lcp.tracking.hook  # noqa: F401  registers LCPMlflowLoggerHook
from lcp.apis.train import run_training
from lcp.models.crux_learner import CruxLearner

CLASSES = ("circle", "square")
IMAGE_SIZE = 32
# per image: (class index, box x1, y1, x2, y2)
BOXES = {
    "a.png": [(0, 2, 2, 14, 14), (1, 16, 16, 30, 30)],
    "b.png": [(0, 4, 4, 20, 20)],
    "c.png": [(1, 6, 2, 26, 22)],
    "d.png": [(0, 1, 10, 11, 20), (1, 14, 3, 28, 17)],
}


def make_coco(root: Path) -> Path:
    """4 images and a COCO annotation file under root (images/, ann.json)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for image_id, (name, boxes) in enumerate(BOXES.items(), start=1):
        cv2.imwrite(str(root / "images" / name), rng.integers(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8))
        images.append({"id": image_id, "file_name": name, "width": IMAGE_SIZE, "height": IMAGE_SIZE})
        for label, x1, y1, x2, y2 in boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": label + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(CLASSES)],
    }
    ann_file = root / "ann.json"
    ann_file.write_text(json.dumps(coco))
    return ann_file


def predictions() -> dict[str, list[np.ndarray]]:
    """Fixed detections: circles exact, squares shifted (lower AP), per file name."""
    result = {}
    for name, boxes in BOXES.items():
        per_class = [[] for _ in CLASSES]
        for label, x1, y1, x2, y2 in boxes:
            shift = 0 if label == 0 else 3
            per_class[label].append([x1 + shift, y1 + shift, x2 + shift, y2 + shift, 0.9])
        result[name] = [np.asarray(b, dtype=np.float32).reshape(-1, 5) for b in per_class]
    return result


class ToyDetector(torch.nn.Module):
    """mmdet's detector interface in miniature: train_step with log_vars, test forward with boxes."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(2.0))
        self.crux_learner = CruxLearner(in_channels=3, mid_channels=4, num_blocks=3)
        self.train_mode = None
        self.detections = predictions()
        self.logged: list[dict[str, float]] = []  # log_vars of every iteration, in order

    def set_train_mode(self, mode: str) -> None:
        self.train_mode = mode

    def train_step(self, data, optimizer=None):
        if self.train_mode == "catch_up_learner":
            losses = {"kl_loss": self.weight**2}
        else:
            losses = {"loss_rpn_cls": 0.5 * self.weight**2, "s0.loss_cls": 0.25 * self.weight**2}
        loss = sum(losses.values())
        log_vars = {name: value.item() for name, value in losses.items()}
        log_vars["loss"] = loss.item()
        self.logged.append(log_vars)
        return dict(loss=loss, log_vars=log_vars, num_samples=len(data["img"]))

    def forward(self, img, img_metas, return_loss=False, **kwargs):
        return [self.detections[meta["ori_filename"]] for meta in img_metas[0]]


def toy_config(data_root: Path, ann_file: Path, **extra) -> Config:
    """The config the toy run reports in runner.meta (as mmdet's train tools do)."""
    test_pipeline = [
        dict(type="LoadImageFromFile"),
        dict(
            type="MultiScaleFlipAug",
            img_scale=(IMAGE_SIZE, IMAGE_SIZE),
            flip=False,
            transforms=[
                dict(type="Resize", keep_ratio=True),
                dict(type="Normalize", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True),
                dict(type="Pad", size_divisor=32),
                dict(type="ImageToTensor", keys=["img"]),
                dict(type="Collect", keys=["img"]),
            ],
        ),
    ]
    test = dict(
        type="CocoDataset",
        data_root=str(data_root) + "/",
        ann_file=ann_file.name,
        img_prefix="images/",
        classes=CLASSES,
        pipeline=test_pipeline,
    )
    return Config(
        dict(
            model=dict(type="ToyDetector"),
            seed=0,
            optimizer=dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=0.0001),
            data=dict(samples_per_gpu=2, workers_per_gpu=0, train=test, val=test, test=test),
            evaluation=dict(interval=1, metric="bbox", classwise=True),
            **extra,
        )
    )


def train_batches(count: int) -> list[dict]:
    return [dict(img=torch.zeros(2, 3, 8, 8)) for _ in range(count)]


def run_toy_training(
    work_dir: Path,
    cfg: Config,
    tracking: dict,
    epochs: int = 3,
    iters_per_epoch: int = 3,
    extra_hooks: list[Hook] = (),
    resume_from: str | None = None,
) -> tuple[EpochBasedRunner, ToyDetector]:
    """Train the toy for `epochs` with LCPMlflowLoggerHook(**tracking) in log_config, like `lcp train`."""
    torch.manual_seed(0)
    model = ToyDetector()
    wrapped = MMDataParallel(model)
    logger = logging.getLogger(f"lcp-tracking-test-{work_dir.name}")
    logger.setLevel(logging.INFO)
    runner = EpochBasedRunner(
        wrapped,
        optimizer=build_optimizer(model, cfg.optimizer),
        work_dir=str(work_dir),
        logger=logger,
        max_epochs=epochs,
        meta=dict(config=cfg.pretty_text, seed=cfg.seed),
    )
    runner.timestamp = "toy"
    runner.register_training_hooks(
        lr_config=dict(policy="step", step=[2]),
        optimizer_config=dict(grad_clip=None),
        checkpoint_config=dict(interval=1),
        timer_config=dict(type="IterTimerHook"),
        log_config=dict(interval=2, hooks=[dict(type="TextLoggerHook"), dict(type="LCPMlflowLoggerHook", **tracking)]),
    )
    runner.register_hook(
        HOOKS.build(
            dict(
                type="TrainModeHook",  # catch-up, crux, then alternating: as many phases as epochs allow
                num_epoch=[1, 1, epochs - 2][: min(epochs, 3)],
                modes=["catch_up_learner", "crux_learner", "alter"][: min(epochs, 3)],
            )
        )
    )
    val_loader = build_dataloader(
        build_dataset(cfg.data.val, dict(test_mode=True)),
        samples_per_gpu=1,
        workers_per_gpu=0,
        dist=False,
        shuffle=False,
    )
    runner.register_hook(EvalHook(val_loader, **cfg.evaluation), priority="LOW")
    for hook in extra_hooks:
        runner.register_hook(hook, priority="HIGHEST")
    if resume_from:  # as `lcp train --auto-resume` does, before runner.run
        runner.resume(resume_from)
    run_training(runner, [train_batches(iters_per_epoch)], [("train", 1)])
    return runner, model
