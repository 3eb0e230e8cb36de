"""mmdet's CascadeRoIHead over fixed-size slots, trained and tested without host syncs.

Each stage assigns and samples with SyncFreeRandomSampler, computes its loss with
SyncFreeShared2FCBBoxHead's slot methods, and hands the next stage every refined slot
with a mask of the boxes mmdet would have kept (the sampled ones, less the ground truths
added as proposals); the next stage's assignment ignores the others. Absent proposal
slots (SyncFreeRPNHead's, score -inf) are never assigned, so never sampled.

At test time every proposal slot goes through the stages (absent ones are empty boxes,
which RoIAlign samples nothing from) and the final multiclass NMS keeps fixed slots
(lcp/models/sync_free_nms.py): mmdet's detections, read back once per batch when they
become numpy arrays (bbox2result).
"""

from __future__ import annotations

import torch
from mmdet.core import bbox2roi
from mmdet.models.builder import HEADS
from mmdet.models.roi_heads import CascadeRoIHead

from lcp.models.bbox_heads import SyncFreeShared2FCBBoxHead
from lcp.models.rpn_head import ABSENT_SCORE, is_proposal
from lcp.models.samplers import SyncFreeRandomSampler, assign_valid_boxes
from lcp.models.sync_free_nms import slots_to_results


@HEADS.register_module()
class SyncFreeCascadeRoIHead(CascadeRoIHead):
    """CascadeRoIHead (same arguments, same state dict; boxes only) whose training step reads nothing back."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.with_mask:
            raise TypeError("SyncFreeCascadeRoIHead has no mask branch; use CascadeRoIHead")
        wrong = [
            type(part).__name__
            for part in list(self.bbox_head) + list(getattr(self, "bbox_sampler", []))
            if not isinstance(part, (SyncFreeShared2FCBBoxHead, SyncFreeRandomSampler))
        ]
        if wrong:
            raise TypeError(
                f"SyncFreeCascadeRoIHead needs SyncFreeShared2FCBBoxHead heads and SyncFreeRandomSampler "
                f"samplers, not {', '.join(wrong)}"
            )

    def forward_train(self, x, img_metas, proposal_list, gt_bboxes, gt_labels, gt_bboxes_ignore=None, gt_masks=None):
        losses = {}
        num_imgs = len(img_metas)
        gt_bboxes_ignore = gt_bboxes_ignore or [None] * num_imgs
        valid_list = [is_proposal(proposals) for proposals in proposal_list]
        for i in range(self.num_stages):
            self.current_stage = i
            rcnn_train_cfg = self.train_cfg[i]
            samples = [
                self.bbox_sampler[i].sample(
                    assign_valid_boxes(
                        self.bbox_assigner[i],
                        proposal_list[j],
                        valid_list[j],
                        gt_bboxes[j],
                        gt_bboxes_ignore[j],
                        gt_labels[j],
                    ),
                    proposal_list[j],
                    gt_bboxes[j],
                    gt_labels[j],
                )
                for j in range(num_imgs)
            ]
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
                    proposal_list, valid_list = bbox_head.refine_slots(
                        rois, roi_labels, bbox_results["bbox_pred"], samples, img_metas
                    )
        return losses

    def simple_test(self, x, proposal_list, img_metas, rescale=False):
        """CascadeRoIHead.simple_test's detections (bbox2result's per-class arrays of each image)."""
        num_slots = max(proposals.size(0) for proposals in proposal_list)
        proposal_list = [_with_absent_slots(proposals, num_slots) for proposals in proposal_list]
        if num_slots == 0:
            return super().simple_test(x, proposal_list, img_metas, rescale)
        present = torch.stack([is_proposal(proposals) for proposals in proposal_list])
        rois = bbox2roi(proposal_list)
        ms_scores = []
        for i in range(self.num_stages):
            bbox_results = self._bbox_forward(i, x, rois)
            cls_score, bbox_pred = bbox_results["cls_score"], bbox_results["bbox_pred"]
            ms_scores.append(cls_score)
            if i < self.num_stages - 1:
                bbox_head = self.bbox_head[i]
                if bbox_head.custom_activation:
                    cls_score = bbox_head.loss_cls.get_activation(cls_score)
                labels = cls_score[:, :-1].argmax(dim=1)
                rois = torch.cat(
                    [
                        bbox_head.regress_by_class(image_rois, image_labels, image_preds, img_meta)
                        for image_rois, image_labels, image_preds, img_meta in zip(
                            rois.split(num_slots),
                            labels.split(num_slots),
                            bbox_pred.split(num_slots),
                            img_metas,
                            strict=True,
                        )
                    ]
                )
        cls_score = sum(ms_scores) / float(len(ms_scores))  # mmdet's average, in its order
        last_head = self.bbox_head[-1]
        detections, labels, found = last_head.get_slot_bboxes(
            rois, cls_score, bbox_pred, present, img_metas, rescale=rescale, cfg=self.test_cfg
        )
        return slots_to_results(detections, labels, found, last_head.num_classes)


def _with_absent_slots(proposals, num_slots):
    """Proposals padded to `num_slots` rows with absent ones (images of a batch may bring different counts)."""
    missing = num_slots - proposals.size(0)
    if missing == 0:
        return proposals
    absent = proposals.new_tensor([0, 0, 0, 0, ABSENT_SCORE][: proposals.size(1)]).expand(missing, -1)
    return torch.cat([proposals, absent])
