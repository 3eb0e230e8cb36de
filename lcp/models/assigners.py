"""mmdet's MaxIoUAssigner without host synchronisation.

mmdet's assigner writes through boolean masks and, with match_low_quality (the RPN's
setting), loops over the ground-truth boxes testing one IoU each in Python: on a GPU every
mask write and every test waits for the device, two per ground-truth box and image. This
one computes the same assignment with tensor operations only.
"""

from __future__ import annotations

import torch
from mmdet.core.bbox.assigners import MaxIoUAssigner
from mmdet.core.bbox.assigners.assign_result import AssignResult
from mmdet.core.bbox.builder import BBOX_ASSIGNERS


@BBOX_ASSIGNERS.register_module()
class SyncFreeMaxIoUAssigner(MaxIoUAssigner):
    """MaxIoUAssigner (same arguments, same AssignResult) computed without host syncs."""

    def assign_wrt_overlaps(self, overlaps: torch.Tensor, gt_labels: torch.Tensor | None = None) -> AssignResult:
        num_gts, num_bboxes = overlaps.shape
        if num_gts == 0 or num_bboxes == 0:
            return super().assign_wrt_overlaps(overlaps, gt_labels)

        max_overlaps, argmax_overlaps = overlaps.max(dim=0)
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)
        assigned = overlaps.new_full((num_bboxes,), -1, dtype=torch.long)

        if isinstance(self.neg_iou_thr, float):
            negative = (max_overlaps >= 0) & (max_overlaps < self.neg_iou_thr)
        elif isinstance(self.neg_iou_thr, tuple):
            assert len(self.neg_iou_thr) == 2
            negative = (max_overlaps >= self.neg_iou_thr[0]) & (max_overlaps < self.neg_iou_thr[1])
        else:
            negative = torch.zeros_like(max_overlaps, dtype=torch.bool)
        assigned = torch.where(negative, 0, assigned)
        assigned = torch.where(max_overlaps >= self.pos_iou_thr, argmax_overlaps + 1, assigned)

        if self.match_low_quality:
            # MaxIoUAssigner's loop lets a later ground truth overwrite an earlier one, so
            # a box takes the highest 1-based number among the ground truths matching it.
            gt_numbers = torch.arange(1, num_gts + 1, device=overlaps.device)
            gt_numbers = torch.where(gt_max_overlaps >= self.min_pos_iou, gt_numbers, 0)
            if self.gt_max_assign_all:
                hits = overlaps == gt_max_overlaps[:, None]
                matched = torch.where(hits, gt_numbers[:, None], 0).amax(dim=0)
            else:
                matched = torch.zeros_like(assigned).scatter_reduce(0, gt_argmax_overlaps, gt_numbers, "amax")
            assigned = torch.where(matched > 0, matched, assigned)

        assigned_labels = None
        if gt_labels is not None:
            assigned_labels = torch.where(assigned > 0, gt_labels[(assigned - 1).clamp(min=0)], -1)
        return AssignResult(num_gts, assigned, max_overlaps, labels=assigned_labels)
