"""SyncFreeMaxIoUAssigner gives exactly mmdet's MaxIoUAssigner result (ground-truth index,
IoU and label per box) on random boxes with many tied IoUs, for every setting the configs
use and the ones they could, and it reads nothing back from the device: no .item(),
nonzero or boolean-mask write, the host syncs of mmdet's version on a GPU."""

from __future__ import annotations

import pytest
import torch
from mmdet.core.bbox.assigners import MaxIoUAssigner

from helpers.sync_probe import SyncingOps
from lcp.models.assigners import SyncFreeMaxIoUAssigner

SETTINGS = [
    dict(pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3, match_low_quality=True),  # the RPN's
    dict(pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5, match_low_quality=False),  # R-CNN stage 1
    dict(pos_iou_thr=0.5, neg_iou_thr=(0.1, 0.4), min_pos_iou=0.2, match_low_quality=True),
    dict(pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0.1, match_low_quality=True, gt_max_assign_all=False),
    dict(pos_iou_thr=0.6, neg_iou_thr=0.4, min_pos_iou=0.0, match_low_quality=True, ignore_iof_thr=0.5),
]


def random_boxes(generator, count, grid=8):
    """Boxes on a coarse grid, so that many IoUs tie exactly."""
    xy = torch.randint(0, 12, (count, 2), generator=generator) * grid
    wh = torch.randint(1, 6, (count, 2), generator=generator) * grid
    return torch.cat([xy, xy + wh], 1).float()


def assign_both(settings, seed, num_gts, num_boxes, with_labels=True, with_ignore=False):
    generator = torch.Generator().manual_seed(seed)
    boxes, gts = random_boxes(generator, num_boxes), random_boxes(generator, num_gts)
    labels = torch.randint(0, 5, (num_gts,), generator=generator) if with_labels else None
    ignore = random_boxes(generator, 3) if with_ignore else None
    return [
        assigner_type(**settings).assign(boxes, gts, ignore, labels)
        for assigner_type in (MaxIoUAssigner, SyncFreeMaxIoUAssigner)
    ]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("seed", range(6))
def test_same_assignment_as_mmdet(settings, seed):
    for num_gts, num_boxes in ((7, 300), (1, 50), (25, 80), (0, 40), (4, 0)):
        for with_labels in (True, False):
            expected, got = assign_both(
                settings, seed, num_gts, num_boxes, with_labels, with_ignore="ignore_iof_thr" in settings
            )
            assert got.num_gts == expected.num_gts
            assert torch.equal(got.gt_inds, expected.gt_inds), (num_gts, num_boxes)
            assert torch.equal(got.max_overlaps, expected.max_overlaps)
            if with_labels:
                assert torch.equal(got.labels, expected.labels)
            else:
                assert got.labels is None and expected.labels is None


def test_low_quality_matches_let_the_later_ground_truth_win_as_mmdet_does():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [100.0, 100.0, 110.0, 110.0]])
    gts = torch.tensor([[0.0, 0.0, 10.0, 20.0], [0.0, 0.0, 20.0, 10.0]])  # both best match box 0 (IoU 0.5)
    for settings in SETTINGS[0], SETTINGS[3]:
        settings = {**settings, "pos_iou_thr": 0.9}
        expected = MaxIoUAssigner(**settings).assign(boxes, gts, gt_labels=torch.tensor([3, 4]))
        got = SyncFreeMaxIoUAssigner(**settings).assign(boxes, gts, gt_labels=torch.tensor([3, 4]))
        assert expected.gt_inds.tolist() == got.gt_inds.tolist() == [2, 0]
        assert expected.labels.tolist() == got.labels.tolist() == [4, -1]


@pytest.mark.parametrize("settings", SETTINGS[:4])
def test_assigns_without_syncing_ops_where_mmdet_has_them(settings):
    generator = torch.Generator().manual_seed(0)
    boxes, gts = random_boxes(generator, 300), random_boxes(generator, 9)
    labels = torch.randint(0, 5, (9,), generator=generator)
    seen = {}
    for assigner_type in (MaxIoUAssigner, SyncFreeMaxIoUAssigner):
        with SyncingOps() as mode:
            assigner_type(**settings).assign(boxes, gts, gt_labels=labels)
        seen[assigner_type] = mode.seen
    assert seen[MaxIoUAssigner]  # the probe sees mmdet's syncs
    assert seen[SyncFreeMaxIoUAssigner] == []
