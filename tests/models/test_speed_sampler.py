"""SyncFreeRandomSampler picks exactly mmdet's RandomSampler's boxes when both draw from the
same random keys (mmdet's permutation being the one that sorts the keys), on random and
adversarial assignments: ties, no ground truth, everything ignored, more positives than
slots, the ground truths added as proposals; and it reads nothing back from the device."""

from __future__ import annotations

import pytest
import torch
from mmdet.core.bbox.assigners.assign_result import AssignResult
from mmdet.core.bbox.samplers import RandomSampler

from helpers.sync_probe import SyncingOps
from lcp.models.samplers import SyncFreeRandomSampler

SETTINGS = [
    dict(num=64, pos_fraction=0.5, add_gt_as_proposals=False),  # the RPN's (tiny)
    dict(num=32, pos_fraction=0.25, add_gt_as_proposals=True),  # an R-CNN stage's
    dict(num=16, pos_fraction=0.25, neg_pos_ub=3, add_gt_as_proposals=True),
    dict(num=16, pos_fraction=0.5, neg_pos_ub=0.5, add_gt_as_proposals=False),
]


class KeyedRandomSampler(RandomSampler):
    """mmdet's sampler, its random permutation replaced by the one that sorts `keys` (highest first)."""

    def __init__(self, keys, **kwargs):
        super().__init__(**kwargs)
        self.keys = keys

    def random_choice(self, gallery, num):
        return gallery[torch.argsort(self.keys[gallery], descending=True)[:num]]


def assignment(generator, num_boxes, num_gts, share_pos, share_ignored):
    draw = torch.rand(num_boxes, generator=generator)
    gt_inds = torch.where(
        draw < share_pos,
        torch.randint(1, max(num_gts, 1) + 1, (num_boxes,), generator=generator),
        torch.where(draw < share_pos + share_ignored, -1, 0),
    )
    if num_gts == 0:
        gt_inds = torch.where(gt_inds > 0, 0, gt_inds)
    labels = torch.where(gt_inds > 0, torch.randint(0, 3, (num_boxes,), generator=generator), -1)
    return AssignResult(num_gts, gt_inds, torch.rand(num_boxes, generator=generator), labels=labels)


CASES = [  # boxes, ground truths, share of positives, share ignored
    (300, 5, 0.1, 0.1),
    (300, 5, 0.9, 0.0),
    (40, 3, 0.3, 0.3),
    (10, 2, 0.5, 0.0),
    (200, 0, 0.0, 0.2),
    (100, 4, 0.0, 1.0),
    (100, 4, 0.5, 0.5),
    (0, 3, 0.0, 0.0),
    (1, 1, 1.0, 0.0),
]


def sample_both(settings, seed, case):
    num_boxes, num_gts, share_pos, share_ignored = case
    generator = torch.Generator().manual_seed(seed)
    boxes = torch.rand(num_boxes, 4, generator=generator) * 50
    boxes[:, 2:] += boxes[:, :2]
    gts = torch.rand(num_gts, 4, generator=generator) * 50
    gts[:, 2:] += gts[:, :2] + 1
    gt_labels = torch.randint(0, 3, (num_gts,), generator=generator)
    assign = assignment(generator, num_boxes, num_gts, share_pos, share_ignored)
    added = num_gts if settings["add_gt_as_proposals"] else 0
    keys = torch.randperm(num_boxes + added, generator=generator).float()  # distinct: no ties in the order
    reference = KeyedRandomSampler(keys, **settings).sample(_copy(assign), boxes, gts, gt_labels)
    got = SyncFreeRandomSampler(**settings).sample(_copy(assign), boxes, gts, gt_labels, keys=keys)
    return reference, got


def _copy(assign):
    return AssignResult(
        assign.num_gts, assign.gt_inds.clone(), assign.max_overlaps.clone(), labels=assign.labels.clone()
    )


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("seed", range(4))
def test_same_sample_as_mmdet_for_the_same_keys(settings, seed):
    for case in CASES:
        reference, got = sample_both(settings, seed, case)
        valid = got.valid
        assert got.inds.numel() == min(settings["num"], got.pos_mask.numel()), case
        assert torch.equal(got.inds[valid], torch.cat([reference.pos_inds, reference.neg_inds])), case
        assert torch.equal(got.is_pos[valid][: reference.pos_inds.numel()].all(), torch.tensor(True))
        assert int(got.is_pos.sum()) == reference.pos_inds.numel() and int(valid.sum()) == len(reference.bboxes)
        assert torch.equal(got.bboxes[valid], reference.bboxes)
        assert torch.equal(got.is_gt[valid][got.is_pos[valid]], reference.pos_is_gt.bool())
        assert torch.equal(got.assigned_gt_bboxes[got.is_pos], reference.pos_gt_bboxes)
        assert torch.equal(got.assigned_gt_labels[got.is_pos], reference.pos_gt_labels)
        assert torch.equal(got.pos_mask.nonzero().squeeze(1), reference.pos_inds)
        assert torch.equal(got.neg_mask.nonzero().squeeze(1), reference.neg_inds)


def test_fresh_keys_sample_uniformly():
    """Without keys, each of 10 positives competing for 4 slots is taken 40% of the time."""
    sampler = SyncFreeRandomSampler(num=8, pos_fraction=0.5, add_gt_as_proposals=False)
    assign = AssignResult(1, torch.tensor([1] * 10 + [0] * 30), torch.zeros(40))
    torch.manual_seed(0)
    taken = sum(
        sampler.sample(_copy_plain(assign), torch.zeros(40, 4), torch.zeros(1, 4)).pos_mask.float() for _ in range(2000)
    )
    assert taken[:10].min() > 0.35 * 2000 and taken[:10].max() < 0.45 * 2000
    assert taken[10:].sum() == 0


def _copy_plain(assign):
    return AssignResult(assign.num_gts, assign.gt_inds.clone(), assign.max_overlaps.clone())


def test_samples_without_syncing_ops_where_mmdet_has_them():
    settings = SETTINGS[1]
    seen = {}
    for sampler_type in (RandomSampler, SyncFreeRandomSampler):
        generator = torch.Generator().manual_seed(0)
        boxes = torch.rand(300, 4, generator=generator) * 50
        boxes[:, 2:] += boxes[:, :2]
        gts, gt_labels = boxes[:5] + 1, torch.tensor([0, 1, 2, 0, 1])
        assign = assignment(generator, 300, 5, 0.3, 0.1)
        with SyncingOps() as mode:
            result = sampler_type(**settings).sample(assign, boxes, gts, gt_labels)
            if sampler_type is SyncFreeRandomSampler:  # its slot fields are computed on first use
                _ = (result.bboxes, result.valid, result.is_gt, result.assigned_gt_bboxes, result.assigned_gt_labels)
        seen[sampler_type] = mode.seen
    assert seen[RandomSampler]
    assert seen[SyncFreeRandomSampler] == []
