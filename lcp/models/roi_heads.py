"""mmdet's CascadeRoIHead trained over fixed-size slots, without host syncs.

Each stage assigns and samples with SyncFreeRandomSampler, computes its loss with
SyncFreeShared2FCBBoxHead's slot methods, and hands the next stage every refined slot
with a mask of the boxes mmdet would have kept (the sampled ones, less the ground truths
added as proposals); the next stage's assignment ignores the others. Test time is mmdet's.
"""

from __future__ import annotations

import torch
from mmdet.core import bbox2roi
from mmdet.models.builder import HEADS
from mmdet.models.roi_heads import CascadeRoIHead

from lcp.models.bbox_heads import SyncFreeShared2FCBBoxHead
from lcp.models.samplers import SyncFreeRandomSampler, assign_valid_boxes


@HEADS.register_module()
class SyncFreeCascadeRoIHead(CascadeRoIHead):
    """CascadeRoIHead (same arguments, same state dict; boxes only) whose training step reads nothing back."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.with_mask:
            raise TypeError("SyncFreeCascadeRoIHead has no mask branch; use CascadeRoIHead")
        wrong = [type(part).__name__ for part in list(self.bbox_head) + list(getattr(self, "bbox_sampler", []))
                 if not isinstance(part, (SyncFreeShared2FCBBoxHead, SyncFreeRandomSampler))]
        if wrong:
            raise TypeError(f"SyncFreeCascadeRoIHead needs SyncFreeShared2FCBBoxHead heads and SyncFreeRandomSampler "
                            f"samplers, not {', '.join(wrong)}")

    def forward_train(self, x, img_metas, proposal_list, gt_bboxes, gt_labels, gt_bboxes_ignore=None, gt_masks=None):
        losses = {}
        num_imgs = len(img_metas)
        gt_bboxes_ignore = gt_bboxes_ignore or [None] * num_imgs
        valid_list = [proposals.new_ones(proposals.shape[0], dtype=torch.bool) for proposals in proposal_list]
        for i in range(self.num_stages):
            self.current_stage = i
            rcnn_train_cfg = self.train_cfg[i]
            samples = [
                self.bbox_sampler[i].sample(
                    assign_valid_boxes(self.bbox_assigner[i], proposal_list[j], valid_list[j], gt_bboxes[j],
                                       gt_bboxes_ignore[j], gt_labels[j]),
                    proposal_list[j], gt_bboxes[j], gt_labels[j])
                for j in range(num_imgs)]
            rois = bbox2roi([sample.bboxes for sample in samples])
            bbox_results = self._bbox_forward(i, x, rois)
            bbox_head = self.bbox_head[i]
            targets = bbox_head.get_slot_targets(samples, rcnn_train_cfg)
            stage_losses = bbox_head.slot_loss(bbox_results["cls_score"], bbox_results["bbox_pred"], rois, *targets)
            for name, value in stage_losses.items():
                losses[f"s{i}.{name}"] = value * self.stage_loss_weights[i] if "loss" in name else value

            if i < self.num_stages - 1:
                with torch.no_grad():
                    cls_score = bbox_results["cls_score"]
                    if bbox_head.custom_activation:
                        cls_score = bbox_head.loss_cls.get_activation(cls_score)
                    if cls_score.numel() == 0:
                        break
                    labels = targets[0]
                    roi_labels = torch.where(labels == bbox_head.num_classes, cls_score[:, :-1].argmax(1), labels)
                    proposal_list, valid_list = bbox_head.refine_slots(rois, roi_labels, bbox_results["bbox_pred"],
                                                                       samples, img_metas)
        return losses
