"""The sync-free RPN head, Cascade RoI head, box head and RoI extractor compute mmdet's
function: with sampling made deterministic (more slots than boxes) a Cascade R-CNN built
from them gives mmdet's losses and gradients for the same weights, also with an image
without ground truth and with ignored regions; at test time the same detections; and their
training step reads nothing back from the device (sampling with random keys is compared
with mmdet's in tests/test_speed_sampler.py)."""

from __future__ import annotations

import pytest
import torch

from lcp.models.sync_free import with_sync_free
from model_configs import batch, build, mmdet_cascade_r50_cfg, randomize_bn_statistics
from sync_probe import SyncingOps

ALL = 100000  # more sampling slots than boxes: every candidate is sampled, no randomness


def tiny_cascade_cfg(num_samples=ALL, ignore_iof_thr=-1):
    cfg = mmdet_cascade_r50_cfg()
    cfg.backbone.update(depth=18, base_channels=8, frozen_stages=-1)
    cfg.neck.update(in_channels=[8, 16, 32, 64], out_channels=16)
    cfg.rpn_head.update(in_channels=16, feat_channels=16)
    cfg.roi_head.bbox_roi_extractor.out_channels = 16
    for head in cfg.roi_head.bbox_head:
        head.update(in_channels=16, fc_out_channels=32, num_classes=2)
    cfg.train_cfg.rpn.sampler.num = num_samples
    cfg.train_cfg.rpn.assigner.ignore_iof_thr = ignore_iof_thr
    cfg.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=60)
    for stage in cfg.train_cfg.rcnn:
        stage.sampler.num = num_samples
        stage.assigner.ignore_iof_thr = ignore_iof_thr
    cfg.test_cfg.rpn.update(nms_pre=100, max_per_img=50)
    return cfg


def twins(cfg):
    """mmdet's Cascade R-CNN and the sync-free one, same weights."""
    torch.manual_seed(0)
    stock = build(cfg)
    randomize_bn_statistics(stock)
    sync_free = build(with_sync_free(cfg))
    sync_free.load_state_dict(stock.state_dict())
    return stock, sync_free


def losses_and_grads(model, data):
    model.train()
    model.zero_grad()
    losses = model.forward_train(**{k: v for k, v in data.items() if k != "img_df"})
    total = sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if "loss" in k)
    total.backward()
    flat = {k: torch.stack(v) if isinstance(v, list) else v for k, v in losses.items()}
    return flat, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def adversarial(case):
    data = batch(num_images=2, height=96, width=80, num_boxes=5, seed=3)
    if case == "image without ground truth":
        data["gt_bboxes"][1] = data["gt_bboxes"][1][:0]
        data["gt_labels"][1] = data["gt_labels"][1][:0]
    if case == "ignored regions":  # the second image's whole area ignored
        data["gt_bboxes_ignore"] = [data["gt_bboxes"][0][:1], torch.tensor([[0.0, 0.0, 80.0, 96.0]])]
    return data


@pytest.mark.parametrize("case", ["boxes", "image without ground truth", "ignored regions"])
def test_same_losses_and_gradients_as_mmdet(case):
    stock, sync_free = twins(tiny_cascade_cfg(ignore_iof_thr=0.5 if case == "ignored regions" else -1))
    data = adversarial(case)
    expected, expected_grads = losses_and_grads(stock, data)
    got, grads = losses_and_grads(sync_free, data)
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name].float(), expected[name].float(), rtol=1e-5, atol=1e-6, msg=name)
    assert grads.keys() == expected_grads.keys()
    for name in expected_grads:
        torch.testing.assert_close(grads[name], expected_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_same_detections_as_mmdet():
    stock, sync_free = twins(tiny_cascade_cfg())
    data = batch(num_images=2, height=96, width=80, seed=5)
    outputs = []
    for model in stock, sync_free:
        model.eval()
        with torch.no_grad():
            outputs.append(model.simple_test(data["img"], data["img_metas"], rescale=True))
    for expected_image, got_image in zip(*outputs, strict=True):
        for expected, got in zip(expected_image, got_image, strict=True):
            assert got.shape == expected.shape
            assert (got == expected).all()


def test_roi_extractor_gives_mmdet_features_and_gradients():
    stock, sync_free = twins(tiny_cascade_cfg())
    generator = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, 16, 96 // s, 80 // s, generator=generator, requires_grad=True) for s in (4, 8, 16, 32)]
    xy = torch.rand(300, 2, generator=generator) * 60
    wh = torch.rand(300, 2, generator=generator) ** 3 * 200  # every level, empty boxes too
    rois = torch.cat([torch.randint(0, 2, (300, 1), generator=generator).float(), xy, xy + wh], 1)
    weights = torch.randn(300, 16, 7, 7, generator=generator)
    results = []
    for model in stock, sync_free:
        out = model.roi_head.bbox_roi_extractor[0](feats, rois)
        grads = torch.autograd.grad((out * weights).sum(), feats)
        results.append((out, grads))
    (expected, expected_grads), (got, grads) = results
    assert torch.equal(got, expected)
    for g, e in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e)


def sampling_cfg():
    return tiny_cascade_cfg(num_samples=64)


def test_training_heads_read_nothing_back_from_the_device():
    """RPN loss, Cascade training and their backward: no syncing op (mmdet's have many)."""
    data = batch(num_images=2, height=96, width=80, num_boxes=5, seed=1)
    seen = {}
    for name, model in zip(("mmdet", "sync-free"), twins(sampling_cfg()), strict=True):
        model.train()
        x = model.extract_feat(data["img"])
        rpn_outs = model.rpn_head(x)
        proposals = model.rpn_head.get_bboxes(*rpn_outs, img_metas=data["img_metas"], cfg=model.train_cfg.rpn_proposal)
        with SyncingOps() as mode:
            losses = model.rpn_head.loss(*rpn_outs, data["gt_bboxes"], data["img_metas"])
            losses.update(model.roi_head.forward_train(x, data["img_metas"], proposals, data["gt_bboxes"],
                                                       data["gt_labels"]))
            total = sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if "loss" in k)
            total.backward()
        seen[name] = mode.seen
    assert seen["mmdet"]
    assert seen["sync-free"] == []
