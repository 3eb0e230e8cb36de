"""The sync-free NMS (lcp/models/sync_free_nms.py) keeps what mmcv's batched_nms and mmdet's
multiclass_nms keep, on random and adversarial inputs (tied scores, chains of boxes each
overlapping the next, no candidate at all, more detections than max_per_img), and reads
back one boolean per block of rounds instead of the kept count of every call."""

from __future__ import annotations

import pytest
import torch
from mmcv.ops import batched_nms
from mmdet.core.post_processing import multiclass_nms

from helpers.sync_probe import SyncingOps
from lcp.models.sync_free_nms import grouped_nms, multiclass_nms_slots, with_group_offsets


def random_boxes(generator, *shape, extent=60.0, size=30.0):
    xy = torch.rand(*shape, 2, generator=generator) * extent
    wh = torch.rand(*shape, 2, generator=generator) * size + 0.5
    return torch.cat([xy, xy + wh], dim=-1)


def mmcv_keep(boxes, scores, valid, iou_threshold, offset=0):
    """mmcv's batched_nms over the valid candidates of (G, K) groups, as a (G, K) keep mask."""
    groups, num = scores.shape
    flat_valid = valid.reshape(-1)
    index = flat_valid.nonzero()[:, 0]
    keep = torch.zeros(groups * num, dtype=torch.bool)
    if index.numel():
        ids = torch.arange(groups)[:, None].expand(groups, num).reshape(-1)
        _, kept = batched_nms(
            boxes.reshape(-1, 4)[index],
            scores.reshape(-1)[index],
            ids[index],
            dict(type="nms", iou_threshold=iou_threshold, offset=offset),
        )
        keep[index[kept]] = True
    return keep.view(groups, num)


def lcp_keep(boxes, scores, valid, iou_threshold, offset=0, **kwargs):
    shifted = with_group_offsets(boxes[None], valid[None])[0]
    return grouped_nms(shifted, scores, valid, iou_threshold, offset, **kwargs)


@pytest.mark.parametrize("iou_threshold", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("offset", [0, 1])
def test_grouped_nms_keeps_what_mmcv_keeps(iou_threshold, offset):
    generator = torch.Generator().manual_seed(int(iou_threshold * 10) + offset)
    for _ in range(20):
        boxes = random_boxes(generator, 5, 80)
        scores = torch.rand(5, 80, generator=generator)
        valid = torch.rand(5, 80, generator=generator) > 0.2
        keep = lcp_keep(boxes, scores, valid, iou_threshold, offset)
        assert torch.equal(keep, mmcv_keep(boxes, scores, valid, iou_threshold, offset))


def test_tied_scores_are_broken_by_position():
    """mmcv's unstable sort orders equal scores arbitrarily; here the earlier candidate wins, which
    is mmcv's result for the same scores made distinct in that order."""
    generator = torch.Generator().manual_seed(1)
    for levels in (1, 3):  # all scores equal, or three values only
        boxes = random_boxes(generator, 4, 100)
        scores = torch.randint(0, levels, (4, 100), generator=generator).float()
        valid = torch.ones(4, 100, dtype=torch.bool)
        position = torch.arange(100.0).expand(4, -1)
        distinct = scores - position / 1000  # same order, ties broken by position
        assert torch.equal(lcp_keep(boxes, scores, valid, 0.5), mmcv_keep(boxes, distinct, valid, 0.5))


def chain(length, step=4.0, size=32.0):
    """Boxes along a row, each overlapping the next above 0.7 but not the one after, in falling score."""
    x = torch.arange(length) * step
    boxes = torch.stack([x, torch.zeros(length), x + size, torch.full((length,), size)], dim=-1)
    return boxes[None], torch.linspace(1, 0.1, length)[None]


@pytest.mark.parametrize("rounds_per_check", [1, 2, 8])
def test_long_suppression_chains_are_solved_exactly(rounds_per_check):
    boxes, scores = chain(60)  # greedy keeps every other box: 30 rounds deep
    valid = torch.ones(1, 60, dtype=torch.bool)
    with SyncingOps() as probe:
        keep = lcp_keep(boxes, scores, valid, 0.7, rounds_per_check=rounds_per_check)
    assert torch.equal(keep, mmcv_keep(boxes, scores, valid, 0.7))
    assert torch.equal(keep[0], torch.arange(60) % 2 == 0)
    assert probe.seen == ["_local_scalar_dense"] * -(-30 // rounds_per_check)


def test_no_candidate_keeps_nothing():
    boxes, scores = chain(10)
    assert not lcp_keep(boxes, scores, torch.zeros(1, 10, dtype=torch.bool), 0.7).any()
    empty = grouped_nms(torch.zeros(3, 0, 4), torch.zeros(3, 0), torch.zeros(3, 0, dtype=torch.bool), 0.7)
    assert empty.shape == (3, 0)


def test_one_read_back_for_all_groups():
    """mmcv syncs per call (the kept count), mmdet per image besides; here one boolean for the batch."""
    generator = torch.Generator().manual_seed(2)
    boxes, scores = random_boxes(generator, 10, 200), torch.rand(10, 200, generator=generator)
    valid = torch.ones(10, 200, dtype=torch.bool)
    with SyncingOps() as probe:
        lcp_keep(boxes, scores, valid, 0.7)
    assert probe.seen == ["_local_scalar_dense"]


def multiclass_case(case, generator, num_rois=40, num_classes=3):
    boxes = random_boxes(generator, num_rois, extent=80.0, size=40.0)
    if case == "class boxes":
        boxes = random_boxes(generator, num_rois, num_classes, extent=80.0, size=40.0).view(num_rois, -1)
    scores = torch.softmax(3 * torch.randn(num_rois, num_classes + 1, generator=generator), dim=1)
    score_thr, max_num = 0.05, 10
    if case == "nothing above score_thr":
        score_thr = 1.0
    if case == "tied scores":
        scores = (scores * 4).round() / 4
    if case == "all kept":
        max_num = -1
    return boxes, scores, score_thr, max_num


def as_set(dets, labels):
    return sorted(zip(labels.tolist(), [tuple(row) for row in dets.tolist()], strict=True))


@pytest.mark.parametrize(
    "case", ["class-agnostic boxes", "class boxes", "nothing above score_thr", "tied scores", "all kept"]
)
def test_multiclass_nms_gives_mmdet_detections(case):
    generator = torch.Generator().manual_seed(3)
    nms_cfg = dict(type="nms", iou_threshold=0.5)
    images = [multiclass_case(case, generator) for _ in range(3)]
    boxes, scores = torch.stack([image[0] for image in images]), torch.stack([image[1] for image in images])
    present = torch.ones(scores.shape[:2], dtype=torch.bool)
    present[1, 25:] = False  # an image with fewer RoIs
    score_thr, max_num = images[0][2:]
    dets, labels, found = multiclass_nms_slots(boxes, scores, present, score_thr, nms_cfg, max_num)
    counts = []
    for i in range(3):
        rois = int(present[i].sum())
        expected, expected_labels = multiclass_nms(boxes[i, :rois], scores[i, :rois], score_thr, nms_cfg, max_num)
        got, got_labels = dets[i][found[i]], labels[i][found[i]]
        counts.append(len(expected))
        if case == "tied scores":  # which of equal scores mmdet keeps at max_num is arbitrary; the scores are not
            assert torch.equal(got[:, 4], expected[:, 4])
            continue
        assert torch.equal(got, expected)
        assert torch.equal(got_labels, expected_labels)
    if case == "nothing above score_thr":
        assert counts == [0, 0, 0]
    elif case == "all kept":
        assert min(counts) > 10
    else:
        assert counts == [10, 10, 10]  # more than max_num survive NMS in each image
