"""The sync-free RPN head, Cascade RoI head, box head and RoI extractor compute mmdet's
function: with sampling made deterministic (more slots than boxes) a Cascade R-CNN built
from them gives mmdet's losses and gradients for the same weights, also with an image
without ground truth, with ignored regions and with absent proposal slots; the same
proposals (min_bbox_size, fewer proposals than slots) and, at test time, the same
detections, also on the project's tiny LCP config; their training step reads nothing back
from the device, proposals and test-time detections one boolean per NMS (sampling with
random keys is compared with mmdet's in tests/models/test_speed_sampler.py, the NMS on adversarial
inputs in tests/models/test_speed_sync_free_nms.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers.model_configs import batch, build, mmdet_cascade_r50_cfg, randomize_bn_statistics
from helpers.sync_probe import SyncingOps
from lcp.models.rpn_head import is_proposal
from lcp.models.sync_free import with_stock_mmdet, with_sync_free

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


@pytest.mark.parametrize("case", ["boxes", "image without ground truth", "ignored regions", "absent proposal slots"])
def test_same_losses_and_gradients_as_mmdet(case):
    cfg = tiny_cascade_cfg(ignore_iof_thr=0.5 if case == "ignored regions" else -1)
    if case == "absent proposal slots":  # more slots than NMS leaves: absent ones must not be sampled
        cfg.train_cfg.rpn_proposal.update(max_per_img=1000, min_bbox_size=6)
    stock, sync_free = twins(cfg)
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


def in_score_order(proposals: torch.Tensor) -> torch.Tensor:
    """Proposals (x1, y1, x2, y2, score) by falling score, those of one score by their corners."""
    order = sorted(range(len(proposals)), key=lambda i: (-proposals[i, 4].item(), *proposals[i, :4].tolist()))
    return proposals[order]


@pytest.mark.parametrize("case", ["train", "test", "min_bbox_size", "fewer proposals than slots"])
def test_same_proposals_as_mmdet(case):
    """mmdet's proposals, in mmdet's order, then absent slots."""
    cfg = tiny_cascade_cfg()
    proposal_cfg = cfg.train_cfg.rpn_proposal if case == "train" else cfg.test_cfg.rpn
    if case == "min_bbox_size":
        proposal_cfg.min_bbox_size = 30  # most boxes of a 96x80 image are smaller
    if case == "fewer proposals than slots":
        proposal_cfg.update(nms_pre=2000, max_per_img=5000)
    stock, sync_free = twins(cfg)
    for seed in range(3):
        data = batch(num_images=2, height=96, width=80, seed=seed)
        with torch.no_grad():
            outs = stock.rpn_head(stock.extract_feat(data["img"]))
            expected = stock.rpn_head.get_bboxes(*outs, img_metas=data["img_metas"], cfg=proposal_cfg)
            got = sync_free.rpn_head.get_bboxes(*outs, img_metas=data["img_metas"], cfg=proposal_cfg)
        for expected_image, got_image in zip(expected, got, strict=True):
            present = is_proposal(got_image)
            assert got_image.shape == (min(proposal_cfg.max_per_img, 5 * proposal_cfg.nms_pre), 5)
            # sigmoid over the batch at once may round a score 1 ulp apart from mmdet's per image; proposals
            # of one score may come in either order (which one a sort or topk puts first depends on the CPU)
            torch.testing.assert_close(
                in_score_order(got_image[present]), in_score_order(expected_image), rtol=0, atol=1e-6
            )
            assert torch.equal(present, torch.arange(len(got_image)) < len(expected_image))
            if case == "fewer proposals than slots":
                assert len(expected_image) < len(got_image) // 2
            if case == "min_bbox_size":
                assert len(expected_image) < proposal_cfg.max_per_img


def project_tiny_lcp_twins(**test_cfg):
    """The project's tiny LCP detector (config/mmdet/lcp_tiny_demo.py) with random weights and
    random BatchNorm statistics, and the same detector with mmdet's heads, same weights."""
    from lcp.apis.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "config" / "mmdet" / "lcp_tiny_demo.py").model
    cfg.roi_head.bbox_roi_extractor.type = "SyncFreeRoIExtractor"
    cfg.test_cfg.rcnn.update(test_cfg)
    torch.manual_seed(0)
    sync_free = build(cfg)
    randomize_bn_statistics(sync_free)
    stock = build(with_stock_mmdet(cfg))
    stock.load_state_dict(sync_free.state_dict())
    return stock.eval(), sync_free.eval()


@pytest.mark.parametrize("case", ["detections", "no detection"])
def test_project_tiny_lcp_gives_todays_detections(case):
    """Same weights, same images: mmdet's heads' and the sync-free heads' detections agree
    (same count per class, boxes and scores within 1e-5), with one read-back per NMS."""
    stock, sync_free = project_tiny_lcp_twins(**(dict(score_thr=1.0) if case == "no detection" else {}))
    data = batch(num_images=3, height=128, width=128, num_classes=3, seed=7)
    with torch.no_grad():
        expected = stock.simple_test(data["img"], data["img_metas"], rescale=True)
        with SyncingOps() as probe:
            got = sync_free.simple_test(data["img"], data["img_metas"], rescale=True)
    assert probe.seen == ["_local_scalar_dense"] * 2  # the RPN's NMS and the final one
    counts = []
    for expected_image, got_image in zip(expected, got, strict=True):
        assert len(got_image) == len(expected_image) == 3
        for expected_class, got_class in zip(expected_image, got_image, strict=True):
            assert got_class.shape == expected_class.shape and got_class.dtype == expected_class.dtype
            torch.testing.assert_close(torch.from_numpy(got_class), torch.from_numpy(expected_class), rtol=0, atol=1e-5)
            counts.append(len(expected_class))
    assert sum(counts) == 0 if case == "no detection" else sum(counts) > 30


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
            losses.update(
                model.roi_head.forward_train(x, data["img_metas"], proposals, data["gt_bboxes"], data["gt_labels"])
            )
            total = sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if "loss" in k)
            total.backward()
        seen[name] = mode.seen
    assert seen["mmdet"]
    assert seen["sync-free"] == []


def test_proposals_read_back_one_boolean():
    """mmdet reads back the min_bbox_size check and the NMS count of every image."""
    data = batch(num_images=2, height=96, width=80, seed=1)
    seen = {}
    for name, model in zip(("mmdet", "sync-free"), twins(sampling_cfg()), strict=True):
        cfg = model.train_cfg.rpn_proposal
        cfg.min_bbox_size = 4
        with torch.no_grad():
            rpn_outs = model.rpn_head(model.extract_feat(data["img"]))
            with SyncingOps() as mode:
                model.rpn_head.get_bboxes(*rpn_outs, img_metas=data["img_metas"], cfg=cfg)
        seen[name] = mode.seen
    assert len(seen["mmdet"]) >= 4
    assert seen["sync-free"] == ["_local_scalar_dense"]


@pytest.mark.parametrize("detector", ["OneSyncCascadeRCNN", "LCPDetector"])
def test_sync_free_proposals_with_an_mmdet_roi_head_are_refused(detector):
    from lcp.apis.config import load_config
    from lcp.errors import LCPError

    config = "lcp_tiny_demo.py" if detector == "LCPDetector" else "cascade_rcnn_tiny_demo.py"
    cfg = load_config(Path(__file__).resolve().parents[2] / "config" / "mmdet" / config).model
    assert cfg.type == detector and cfg.rpn_head.type == "SyncFreeRPNHead"
    build(cfg)  # the configs' pairing builds
    cfg.roi_head.type = "CascadeRoIHead"
    with pytest.raises(
        LCPError, match=rf"^{detector}: rpn_head SyncFreeRPNHead pads .* roi_head is CascadeRoIHead; use"
    ):
        build(cfg)
    cfg.rpn_head.type = "RPNHead"  # mmdet's pair builds
    build(cfg)
