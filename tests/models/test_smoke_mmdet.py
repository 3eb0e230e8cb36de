"""The toolchain works end to end: mmdet's own Cascade R-CNN config, shrunk, trains one step
and tests one batch on CPU through mmcv's compiled ops."""

from pathlib import Path

import mmcv.ops
import mmdet
import numpy as np
import pytest
import torch
from mmcv import Config
from mmcv.runner import build_optimizer
from mmdet.models import build_detector

MMDET_CONFIGS = Path(mmdet.__file__).parent / ".mim" / "configs"


def tiny_cascade_rcnn_config() -> Config:
    cfg = Config.fromfile(str(MMDET_CONFIGS / "cascade_rcnn" / "cascade_rcnn_r50_fpn_1x_coco.py"))
    model = cfg.model
    model.backbone.update(depth=18, base_channels=16, init_cfg=None)
    model.neck.update(in_channels=[16, 32, 64, 128], out_channels=32)
    model.rpn_head.update(in_channels=32, feat_channels=32)
    model.roi_head.bbox_roi_extractor.out_channels = 32
    for head in model.roi_head.bbox_head:
        head.update(in_channels=32, fc_out_channels=64, num_classes=3)
    return cfg


def batch(num_images: int = 2, size: int = 128):
    rng = np.random.default_rng(0)
    img = torch.from_numpy(rng.standard_normal((num_images, 3, size, size)).astype(np.float32))
    metas = [
        dict(
            img_shape=(size, size, 3),
            ori_shape=(size, size, 3),
            pad_shape=(size, size, 3),
            scale_factor=np.ones(4, dtype=np.float32),
            flip=False,
        )
        for _ in range(num_images)
    ]
    boxes = [torch.tensor([[10.0, 12.0, 60.0, 70.0], [70.0, 64.0, 120.0, 110.0]]) for _ in range(num_images)]
    labels = [torch.tensor([0, 2]) for _ in range(num_images)]
    return img, metas, boxes, labels


def test_cascade_rcnn_trains_and_tests_on_cpu_with_mmcv_ops():
    torch.manual_seed(0)
    cfg = tiny_cascade_rcnn_config()
    detector = build_detector(cfg.model)
    roi_layer = detector.roi_head.bbox_roi_extractor[0].roi_layers[0]
    assert isinstance(roi_layer, mmcv.ops.RoIAlign), "RoI features must come from mmcv's compiled op"

    img, metas, boxes, labels = batch()
    optimizer = build_optimizer(detector, dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=1e-4))
    detector.train()
    losses = detector(img, metas, gt_bboxes=boxes, gt_labels=labels, return_loss=True)
    loss, log_vars = detector._parse_losses(losses)
    assert torch.isfinite(loss)
    assert {"loss_rpn_cls", "s0.loss_cls", "s1.loss_bbox", "s2.acc"} <= set(log_vars)
    before = detector.roi_head.bbox_head[0].fc_cls.weight.detach().clone()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert not torch.equal(before, detector.roi_head.bbox_head[0].fc_cls.weight)

    detector.eval()
    with torch.no_grad():
        results = detector(img=[img], img_metas=[metas], return_loss=False, rescale=True)
    assert len(results) == 2
    for per_image in results:
        assert len(per_image) == 3  # one array per class
        for dets in per_image:
            assert dets.ndim == 2 and dets.shape[1] == 5
            assert (dets[:, 4] >= cfg.model.test_cfg.rcnn.score_thr).all()
            assert len(dets) <= cfg.model.test_cfg.rcnn.max_per_img


@pytest.mark.parametrize("iou_threshold", [0.3, 0.7])
def test_mmcv_nms_on_cpu(iou_threshold):
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = mmcv.ops.nms(boxes, scores, iou_threshold)
    # the first two boxes overlap with IoU 81/119 = 0.68
    expected = [0, 2] if iou_threshold < 0.68 else [0, 1, 2]
    assert keep.tolist() == expected
