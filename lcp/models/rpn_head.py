"""mmdet's RPNHead with training targets and loss computed without host syncs.

mmdet's anchor head selects the anchors inside the image by boolean indexing, tests
`inside_flags.any()`, writes the sampled anchors' targets through index lists and maps
them back (unmap), counts the samples as Python ints for the loss normaliser, and its
binary cross-entropy expands the labels to one-hot with nonzero. Here every anchor keeps
its place: anchors outside the image are assigned nothing (assign_valid_boxes), the
targets are masks over all anchors (SyncFreeRandomSampler), the normaliser stays a tensor
and the one-hot labels are a comparison. Same targets, same losses, same parameters.
"""

from __future__ import annotations

import torch
from mmdet.core import anchor_inside_flags, images_to_levels
from mmdet.models.builder import HEADS
from mmdet.models.dense_heads import RPNHead

from lcp.models.samplers import SyncFreeRandomSampler, assign_valid_boxes


@HEADS.register_module()
class SyncFreeRPNHead(RPNHead):
    """RPNHead (same arguments, same state dict) whose training step reads nothing back from the device."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.train_cfg is not None and not isinstance(self.sampler, SyncFreeRandomSampler):
            raise TypeError(f"SyncFreeRPNHead needs train_cfg.rpn.sampler type SyncFreeRandomSampler, "
                            f"not {type(self.sampler).__name__}")

    def get_targets(self, anchor_list, valid_flag_list, gt_bboxes_list, img_metas, gt_bboxes_ignore_list=None,
                    gt_labels_list=None, label_channels=1, unmap_outputs=True, return_sampling_results=False):
        """anchor_head.get_targets' result, the two sample counts as tensors."""
        num_imgs = len(img_metas)
        gt_bboxes_ignore_list = gt_bboxes_ignore_list or [None] * num_imgs
        gt_labels_list = gt_labels_list or [None] * num_imgs
        num_level_anchors = [anchors.size(0) for anchors in anchor_list[0]]
        per_image = [self._image_targets(torch.cat(anchor_list[i]), torch.cat(valid_flag_list[i]), gt_bboxes_list[i],
                                         gt_bboxes_ignore_list[i], img_metas[i], gt_labels_list[i])
                     for i in range(num_imgs)]
        labels, label_weights, bbox_targets, bbox_weights, num_pos, num_neg = zip(*per_image, strict=True)
        return (images_to_levels(labels, num_level_anchors), images_to_levels(label_weights, num_level_anchors),
                images_to_levels(bbox_targets, num_level_anchors), images_to_levels(bbox_weights, num_level_anchors),
                sum(num_pos), sum(num_neg))

    def _image_targets(self, anchors, valid_flags, gt_bboxes, gt_bboxes_ignore, img_meta, gt_labels):
        inside = anchor_inside_flags(anchors, valid_flags, img_meta["img_shape"][:2], self.train_cfg.allowed_border)
        assign_result = assign_valid_boxes(self.assigner, anchors, inside, gt_bboxes, gt_bboxes_ignore,
                                           None if self.sampling else gt_labels)
        sample = self.sampler.sample(assign_result, anchors, gt_bboxes)
        pos, neg = sample.pos_mask, sample.neg_mask
        assigned = (assign_result.gt_inds - 1).clamp(min=0)

        if gt_bboxes.numel() == 0:
            bbox_targets = torch.zeros_like(anchors)
        else:
            assigned_gt_bboxes = gt_bboxes[assigned]
            bbox_targets = (assigned_gt_bboxes if self.reg_decoded_bbox
                            else self.bbox_coder.encode(anchors, assigned_gt_bboxes))
            bbox_targets = torch.where(pos[:, None], bbox_targets, 0)
        bbox_weights = pos[:, None].expand_as(anchors).to(anchors.dtype)
        foreground = 0 if gt_labels is None or gt_labels.numel() == 0 else gt_labels[assigned]
        labels = torch.where(pos, foreground, self.num_classes)
        pos_weight = 1.0 if self.train_cfg.pos_weight <= 0 else self.train_cfg.pos_weight
        label_weights = torch.where(pos, pos_weight, neg.float())
        # mmdet counts at least one positive and one negative per image
        return labels, label_weights, bbox_targets, bbox_weights, pos.sum().clamp(min=1), neg.sum().clamp(min=1)

    def loss_single(self, cls_score, bbox_pred, anchors, labels, label_weights, bbox_targets, bbox_weights,
                    num_total_samples):
        """anchor_head.loss_single, with the one-hot labels and weights that mmdet's binary
        cross-entropy would expand with nonzero made by a comparison instead."""
        labels = labels.reshape(-1)
        label_weights = label_weights.reshape(-1)
        if self.use_sigmoid_cls:
            labels = (labels[:, None] == torch.arange(self.cls_out_channels, device=labels.device)).long()
            label_weights = label_weights[:, None].expand(-1, self.cls_out_channels)
        cls_score = cls_score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels)
        loss_cls = self.loss_cls(cls_score, labels, label_weights, avg_factor=num_total_samples)
        bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(-1, 4)
        if self.reg_decoded_bbox:
            bbox_pred = self.bbox_coder.decode(anchors.reshape(-1, 4), bbox_pred)
        loss_bbox = self.loss_bbox(bbox_pred, bbox_targets.reshape(-1, 4), bbox_weights.reshape(-1, 4),
                                   avg_factor=num_total_samples)
        return loss_cls, loss_bbox
