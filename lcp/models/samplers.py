"""mmdet's RandomSampler with fixed-size outputs and on-device counts.

mmdet's sampler finds the positive and negative boxes with nonzero, draws with a host-side
randperm and deduplicates with unique: on a GPU each waits for the device. This one gives
each box a random key and takes the top keys among the candidates (topk), so the number
of sampled boxes stays on the device: it returns `num` slots, of which the unused ones
are marked invalid and weighted zero downstream (lcp/models/rpn_head.py,
bbox_heads.py, roi_heads.py). With the same keys it picks exactly the boxes mmdet's would
pick from the permutation that sorts those keys; with fresh random keys the sample has
mmdet's distribution.
"""

from __future__ import annotations

from functools import cached_property

import torch
from mmdet.core.bbox.assigners.assign_result import AssignResult
from mmdet.core.bbox.builder import BBOX_SAMPLERS
from mmdet.core.bbox.samplers import RandomSampler


def assign_valid_boxes(
    assigner,
    bboxes: torch.Tensor,
    valid: torch.Tensor,
    gt_bboxes: torch.Tensor,
    gt_bboxes_ignore: torch.Tensor | None,
    gt_labels: torch.Tensor | None,
) -> AssignResult:
    """A MaxIoUAssigner's result for `bboxes` as if only the `valid` ones had been given.

    mmdet drops invalid boxes by boolean indexing (anchors outside the image, ground truths
    a Cascade stage removed from its proposals); here their IoUs are set to -1, so they
    match nothing and take no low-quality match, and their assignment is -1 (ignored).
    """
    bboxes = bboxes[:, :4]
    overlaps = assigner.iou_calculator(gt_bboxes, bboxes)
    if (
        assigner.ignore_iof_thr > 0
        and gt_bboxes_ignore is not None
        and gt_bboxes_ignore.numel() > 0
        and bboxes.numel() > 0
    ):
        if assigner.ignore_wrt_candidates:
            ignore_max = assigner.iou_calculator(bboxes, gt_bboxes_ignore, mode="iof").max(dim=1).values
        else:
            ignore_max = assigner.iou_calculator(gt_bboxes_ignore, bboxes, mode="iof").max(dim=0).values
        overlaps = torch.where((ignore_max > assigner.ignore_iof_thr)[None], -1.0, overlaps)
    overlaps = torch.where(valid[None], overlaps, -1.0)
    result = assigner.assign_wrt_overlaps(overlaps, gt_labels)
    result.gt_inds = torch.where(valid, result.gt_inds, -1)
    if result.labels is not None:
        result.labels = torch.where(valid, result.labels, -1)
    return result


class SlotSamplingResult:
    """A sample as `num` slots (fewer only when there are fewer boxes).

    Valid slots hold mmdet's SamplingResult in its order: the sampled positives, then the
    sampled negatives, each in ascending box order; the invalid slots after them point at
    unsampled boxes and must get zero weight. `pos_mask` / `neg_mask` flag the sampled boxes.
    """

    def __init__(self, pos_mask, neg_mask, num_slots, bboxes, gt_bboxes, assign_result, gt_flags):
        self.pos_mask, self.neg_mask, self.num_slots = pos_mask, neg_mask, num_slots
        self.all_bboxes, self.gt_flags, self.assign_result = bboxes, gt_flags, assign_result
        self.gt_bboxes = gt_bboxes.view(-1, 4)
        self.num_gts = self.gt_bboxes.shape[0]

    @cached_property
    def inds(self) -> torch.Tensor:
        num_boxes = self.pos_mask.numel()
        position = torch.arange(num_boxes, device=self.pos_mask.device)
        order = torch.where(
            self.pos_mask, position, torch.where(self.neg_mask, num_boxes + position, 2 * num_boxes + position)
        )
        return order.topk(self.num_slots, largest=False).indices

    @cached_property
    def is_pos(self) -> torch.Tensor:
        return self.pos_mask[self.inds]

    @cached_property
    def valid(self) -> torch.Tensor:
        return self.is_pos | self.neg_mask[self.inds]

    @cached_property
    def bboxes(self) -> torch.Tensor:
        return self.all_bboxes[self.inds]

    @cached_property
    def is_gt(self) -> torch.Tensor:
        """Slots holding a ground-truth box added as a proposal and sampled as positive."""
        return self.gt_flags[self.inds] & self.is_pos

    @cached_property
    def assigned_gt_inds(self) -> torch.Tensor:
        """0-based ground truth of each slot (0 where there is none: weight those slots zero)."""
        return (self.assign_result.gt_inds[self.inds] - 1).clamp(min=0)

    @cached_property
    def assigned_gt_bboxes(self) -> torch.Tensor:
        if self.num_gts == 0:
            return self.bboxes.new_zeros(self.bboxes.shape)
        return self.gt_bboxes[self.assigned_gt_inds]

    @cached_property
    def assigned_gt_labels(self) -> torch.Tensor | None:
        labels = self.assign_result.labels
        return None if labels is None else labels[self.inds]


@BBOX_SAMPLERS.register_module()
class SyncFreeRandomSampler(RandomSampler):
    """RandomSampler (same arguments) returning a SlotSamplingResult, without host syncs."""

    def sample(self, assign_result, bboxes, gt_bboxes, gt_labels=None, keys=None, **kwargs) -> SlotSamplingResult:
        """`keys`: one random key per box (after the ground truths added as proposals); the
        highest keys among the candidates are taken. Drawn uniformly when not given."""
        if bboxes.dim() < 2:
            bboxes = bboxes[None, :]
        bboxes = bboxes[:, :4]
        gt_flags = bboxes.new_zeros((bboxes.shape[0],), dtype=torch.bool)
        if self.add_gt_as_proposals and len(gt_bboxes) > 0:
            if gt_labels is None:
                raise ValueError("gt_labels must be given when add_gt_as_proposals is True")
            bboxes = torch.cat([gt_bboxes, bboxes], dim=0)
            assign_result.add_gt_(gt_labels)
            gt_flags = torch.cat([bboxes.new_ones(gt_bboxes.shape[0], dtype=torch.bool), gt_flags])
        num_boxes = bboxes.shape[0]
        if keys is None:
            keys = torch.rand(num_boxes, device=bboxes.device)

        gt_inds = assign_result.gt_inds
        pos_mask = self._choose(gt_inds > 0, keys, int(self.num * self.pos_fraction))
        num_pos = pos_mask.sum()
        neg_limit = self.num - num_pos
        if self.neg_pos_ub >= 0:
            neg_limit = torch.minimum(neg_limit, (self.neg_pos_ub * num_pos.clamp(min=1)).floor().long())
        neg_mask = self._choose(gt_inds == 0, keys, self.num, neg_limit)
        return SlotSamplingResult(
            pos_mask, neg_mask, min(self.num, num_boxes), bboxes, gt_bboxes, assign_result, gt_flags
        )

    @staticmethod
    def _choose(candidates, keys, most: int, limit: torch.Tensor | int | None = None) -> torch.Tensor:
        """Mask of the candidates with the `limit` highest keys (at most `most`; all if fewer)."""
        top_keys, top = torch.where(candidates, keys, -torch.inf).topk(min(most, candidates.numel()))
        take = top_keys > -torch.inf
        if limit is not None:
            take = take & (torch.arange(top.numel(), device=top.device) < limit)
        return torch.zeros_like(candidates).scatter(0, top, take)
