"""mmdet's Shared2FCBBoxHead with training targets, loss and Cascade refinement over fixed-size slots.

mmdet's BBoxHead.loss reads its normaliser back with .item(), tests `pos_inds.any()` and
selects the positive rows by boolean indexing; refine_bboxes finds each image's RoIs with
nonzero and drops the sampled ground truths by boolean indexing. These versions work on
the slots of SyncFreeRandomSampler (lcp/models/samplers.py): invalid slots get zero
weight, the normalisers stay tensors, and refinement returns every slot's box with a mask
of the ones mmdet would keep. At test time `get_slot_bboxes` gives mmdet's get_bboxes
detections of a batch in fixed slots (mmdet's multiclass_nms without boolean filtering or a
kept count read back). Same parameters.
"""

from __future__ import annotations

import torch
from mmcv.runner import force_fp32
from mmdet.models.builder import HEADS
from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead

from lcp.models.sync_free_nms import multiclass_nms_slots


@HEADS.register_module()
class SyncFreeShared2FCBBoxHead(Shared2FCBBoxHead):
    """Shared2FCBBoxHead (same arguments, same state dict) with slot-based training methods."""

    def get_slot_targets(self, samples, rcnn_train_cfg):
        """BBoxHead.get_targets for SlotSamplingResults: labels, label weights, box targets and
        weights per slot, concatenated over images; invalid slots weigh zero."""
        labels, label_weights, bbox_targets, bbox_weights = [], [], [], []
        pos_weight = 1.0 if rcnn_train_cfg.pos_weight <= 0 else rcnn_train_cfg.pos_weight
        for sample in samples:
            pos = sample.is_pos
            labels.append(torch.where(pos, sample.assigned_gt_labels, self.num_classes))
            label_weights.append(torch.where(pos, pos_weight, sample.valid.float()))
            targets = (
                sample.assigned_gt_bboxes
                if self.reg_decoded_bbox
                else self.bbox_coder.encode(sample.bboxes, sample.assigned_gt_bboxes)
            )
            bbox_targets.append(torch.where(pos[:, None], targets, 0))
            bbox_weights.append(pos[:, None].expand(-1, 4).to(targets.dtype))
        return (
            torch.cat(labels),
            torch.cat(label_weights),
            torch.cat(bbox_targets),
            torch.cat(bbox_weights),
            torch.cat([sample.valid for sample in samples]),
        )

    @force_fp32(apply_to=("cls_score", "bbox_pred"))
    def slot_loss(self, cls_score, bbox_pred, rois, labels, label_weights, bbox_targets, bbox_weights, valid):
        """BBoxHead.loss over slots, `valid` marking the sampled ones."""
        losses = {}
        num_sampled = valid.sum()
        if cls_score is not None and cls_score.numel() > 0:
            avg_factor = (label_weights > 0).sum().float().clamp(min=1)
            losses["loss_cls"] = self.loss_cls(cls_score, labels, label_weights, avg_factor=avg_factor)
            losses["acc"] = masked_accuracy(cls_score, labels, valid)
        if bbox_pred is not None:
            if self.reg_decoded_bbox:
                bbox_pred = self.bbox_coder.decode(rois[:, 1:], bbox_pred)
            if not self.reg_class_agnostic:
                rows = bbox_pred.view(bbox_pred.size(0), -1, 4)
                bbox_pred = rows[torch.arange(rows.size(0), device=rows.device), labels.clamp(max=rows.size(1) - 1)]
            # mmdet averages over all sampled RoIs, positive or not
            losses["loss_bbox"] = self.loss_bbox(
                bbox_pred.view(-1, 4), bbox_targets, bbox_weights, avg_factor=num_sampled
            )
        return losses

    @force_fp32(apply_to=("bbox_preds",))
    def refine_slots(self, rois, labels, bbox_preds, samples, img_metas):
        """BBoxHead.refine_bboxes over slots: each image's regressed boxes, all slots kept, and
        the mask of those mmdet keeps (sampled, and not a ground truth added as a proposal)."""
        sizes = [sample.num_slots for sample in samples]
        boxes, keep = [], []
        for image_rois, image_labels, image_preds, sample, img_meta in zip(
            rois.split(sizes), labels.split(sizes), bbox_preds.split(sizes), samples, img_metas, strict=True
        ):
            boxes.append(self.regress_by_class(image_rois[:, 1:], image_labels, image_preds, img_meta))
            keep.append(sample.valid & ~sample.is_gt)
        return boxes, keep

    def get_slot_bboxes(self, rois, cls_score, bbox_pred, present, img_metas, rescale=False, cfg=None):
        """BBoxHead.get_bboxes for a batch of images with the same number of RoI slots, `present` (B, N)
        marking the RoIs that exist: detections (B, M, 5), labels (B, M) and the mask of the slots
        holding one (lcp.models.sync_free_nms.multiclass_nms_slots)."""
        num_imgs, num_slots = present.shape
        boxes, scores = [], []
        for image_rois, image_scores, image_preds, img_meta in zip(
            rois.split(num_slots), cls_score.split(num_slots), bbox_pred.split(num_slots), img_metas, strict=True
        ):
            image_boxes, image_scores = self.get_bboxes(
                image_rois,
                image_scores,
                image_preds,
                img_meta["img_shape"],
                img_meta["scale_factor"],
                rescale=rescale,
                cfg=None,
            )
            boxes.append(image_boxes)
            scores.append(image_scores)
        return multiclass_nms_slots(
            torch.stack(boxes), torch.stack(scores), present, cfg.score_thr, cfg.nms, cfg.max_per_img
        )


def masked_accuracy(cls_score, labels, valid):
    """mmdet's top-1 accuracy (percent, shape (1,)) over the valid slots only."""
    correct = (cls_score.topk(1, dim=1).indices[:, 0] == labels) & valid
    return correct.float().sum(0, keepdim=True) * 100.0 / valid.sum().clamp(min=1)
