"""mmdet's RPNHead with training targets, loss and proposals computed without host syncs.

mmdet's anchor head selects the anchors inside the image by boolean indexing, tests
`inside_flags.any()`, writes the sampled anchors' targets through index lists and maps
them back (unmap), counts the samples as Python ints for the loss normaliser, and its
binary cross-entropy expands the labels to one-hot with nonzero. Here every anchor keeps
its place: anchors outside the image are assigned nothing (assign_valid_boxes), the
targets are masks over all anchors (SyncFreeRandomSampler), the normaliser stays a tensor
and the one-hot labels are a comparison. Same targets, same losses, same parameters.

Proposals: mmdet's _get_bboxes_single filters min_bbox_size by boolean indexing (after an
`.all()` read-back) and runs mmcv's batched_nms per image, whose kept count comes back to
the host. Here the whole batch keeps fixed shapes: each level's top `nms_pre` candidates
of every image in one sort, min_bbox_size as a validity mask, NMS per (image, level) as a
keep mask (lcp/models/sync_free_nms.py), and the `max_per_img` best kept ones in mmdet's
order. Each image gets `max_per_img` slots: mmdet's proposals first, then absent slots (an
empty box at the origin, score -inf; `is_proposal` tells them apart), which
SyncFreeCascadeRoIHead neither samples nor detects from. Same proposals as mmdet's.
"""

from __future__ import annotations

import torch
from mmcv.runner import force_fp32
from mmdet.core import anchor_inside_flags, images_to_levels, merge_aug_proposals
from mmdet.models.builder import HEADS
from mmdet.models.dense_heads import RPNHead

from lcp.models.samplers import SyncFreeRandomSampler, assign_valid_boxes
from lcp.models.sync_free_nms import check_nms_cfg, grouped_nms, top_kept, with_group_offsets

ABSENT_SCORE = -torch.inf


def is_proposal(proposals: torch.Tensor) -> torch.Tensor:
    """Mask of the slots of a proposal tensor (..., 5) that hold a proposal (absent ones score -inf)."""
    return proposals[..., 4] > ABSENT_SCORE


@HEADS.register_module()
class SyncFreeRPNHead(RPNHead):
    """RPNHead (same arguments, same state dict) whose training step reads nothing back from the device."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.train_cfg is not None and not isinstance(self.sampler, SyncFreeRandomSampler):
            raise TypeError(
                f"SyncFreeRPNHead needs train_cfg.rpn.sampler type SyncFreeRandomSampler, "
                f"not {type(self.sampler).__name__}"
            )

    def get_targets(
        self,
        anchor_list,
        valid_flag_list,
        gt_bboxes_list,
        img_metas,
        gt_bboxes_ignore_list=None,
        gt_labels_list=None,
        label_channels=1,
        unmap_outputs=True,
        return_sampling_results=False,
    ):
        """anchor_head.get_targets' result, the two sample counts as tensors."""
        num_imgs = len(img_metas)
        gt_bboxes_ignore_list = gt_bboxes_ignore_list or [None] * num_imgs
        gt_labels_list = gt_labels_list or [None] * num_imgs
        num_level_anchors = [anchors.size(0) for anchors in anchor_list[0]]
        per_image = [
            self._image_targets(
                torch.cat(anchor_list[i]),
                torch.cat(valid_flag_list[i]),
                gt_bboxes_list[i],
                gt_bboxes_ignore_list[i],
                img_metas[i],
                gt_labels_list[i],
            )
            for i in range(num_imgs)
        ]
        labels, label_weights, bbox_targets, bbox_weights, num_pos, num_neg = zip(*per_image, strict=True)
        return (
            images_to_levels(labels, num_level_anchors),
            images_to_levels(label_weights, num_level_anchors),
            images_to_levels(bbox_targets, num_level_anchors),
            images_to_levels(bbox_weights, num_level_anchors),
            sum(num_pos),
            sum(num_neg),
        )

    def _image_targets(self, anchors, valid_flags, gt_bboxes, gt_bboxes_ignore, img_meta, gt_labels):
        inside = anchor_inside_flags(anchors, valid_flags, img_meta["img_shape"][:2], self.train_cfg.allowed_border)
        assign_result = assign_valid_boxes(
            self.assigner, anchors, inside, gt_bboxes, gt_bboxes_ignore, None if self.sampling else gt_labels
        )
        sample = self.sampler.sample(assign_result, anchors, gt_bboxes)
        pos, neg = sample.pos_mask, sample.neg_mask
        assigned = (assign_result.gt_inds - 1).clamp(min=0)

        if gt_bboxes.numel() == 0:
            bbox_targets = torch.zeros_like(anchors)
        else:
            assigned_gt_bboxes = gt_bboxes[assigned]
            bbox_targets = (
                assigned_gt_bboxes if self.reg_decoded_bbox else self.bbox_coder.encode(anchors, assigned_gt_bboxes)
            )
            bbox_targets = torch.where(pos[:, None], bbox_targets, 0)
        bbox_weights = pos[:, None].expand_as(anchors).to(anchors.dtype)
        foreground = 0 if gt_labels is None or gt_labels.numel() == 0 else gt_labels[assigned]
        labels = torch.where(pos, foreground, self.num_classes)
        pos_weight = 1.0 if self.train_cfg.pos_weight <= 0 else self.train_cfg.pos_weight
        label_weights = torch.where(pos, pos_weight, neg.float())
        # mmdet counts at least one positive and one negative per image
        return labels, label_weights, bbox_targets, bbox_weights, pos.sum().clamp(min=1), neg.sum().clamp(min=1)

    def loss_single(
        self, cls_score, bbox_pred, anchors, labels, label_weights, bbox_targets, bbox_weights, num_total_samples
    ):
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
        loss_bbox = self.loss_bbox(
            bbox_pred, bbox_targets.reshape(-1, 4), bbox_weights.reshape(-1, 4), avg_factor=num_total_samples
        )
        return loss_cls, loss_bbox

    @force_fp32(apply_to=("cls_scores", "bbox_preds"))
    def get_bboxes(
        self,
        cls_scores,
        bbox_preds,
        score_factors=None,
        img_metas=None,
        cfg=None,
        rescale=False,
        with_nms=True,
        **kwargs,
    ):
        """RPNHead's proposals for the whole batch: per image a (max_per_img, 5) tensor, mmdet's
        proposals in mmdet's order (score, then level and anchor) followed by absent slots."""
        if not with_nms:
            return super().get_bboxes(
                cls_scores, bbox_preds, score_factors, img_metas, cfg, rescale, with_nms, **kwargs
            )
        cfg = self.test_cfg if cfg is None else cfg
        iou_threshold, offset = check_nms_cfg(cfg.nms)
        boxes, scores, valid = self._level_candidates(cls_scores, bbox_preds, img_metas, cfg.get("nms_pre", -1))
        min_bbox_size = cfg.get("min_bbox_size", -1)
        if min_bbox_size >= 0:
            widths, heights = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
            valid &= (widths > min_bbox_size) & (heights > min_bbox_size)

        num_imgs, num_levels, num_candidates = scores.shape
        shifted = with_group_offsets(boxes, valid)
        keep = grouped_nms(shifted.flatten(0, 1), scores.flatten(0, 1), valid.flatten(0, 1), iou_threshold, offset)
        keep = keep.view(num_imgs, num_levels * num_candidates)
        scores = scores.view(num_imgs, -1)
        top, present = top_kept(scores, keep, cfg.max_per_img)
        proposals = torch.cat(
            [boxes.view(num_imgs, -1, 4).gather(1, top[..., None].expand(-1, -1, 4)), scores.gather(1, top)[..., None]],
            dim=-1,
        )
        absent = proposals.new_tensor([0, 0, 0, 0, ABSENT_SCORE])
        return list(torch.where(present[..., None], proposals, absent).unbind(0))

    def _level_candidates(self, cls_scores, bbox_preds, img_metas, nms_pre):
        """Each level's `nms_pre` best-scored anchors of every image, decoded and clipped to the image:
        boxes (B, L, K, 4), scores and valid (B, L, K); levels with fewer anchors are padded, invalid."""
        num_imgs = cls_scores[0].size(0)
        anchors = self.prior_generator.grid_priors(
            [score.shape[-2:] for score in cls_scores], dtype=cls_scores[0].dtype, device=cls_scores[0].device
        )
        level_scores, level_deltas, level_anchors = [], [], []
        for cls_score, bbox_pred, level_anchor in zip(cls_scores, bbox_preds, anchors, strict=True):
            cls_score = cls_score.detach().permute(0, 2, 3, 1)
            if self.use_sigmoid_cls:
                scores = cls_score.reshape(num_imgs, -1).sigmoid()
            else:  # the foreground is class 0 since mmdet v2.5
                scores = cls_score.reshape(num_imgs, -1, 2).softmax(dim=-1)[..., 0]
            deltas = bbox_pred.detach().permute(0, 2, 3, 1).reshape(num_imgs, -1, 4)
            level_anchor = level_anchor.expand(num_imgs, -1, -1)
            if 0 < nms_pre < scores.size(1):
                scores, rank = scores.sort(dim=1, descending=True, stable=True)
                scores, rank = scores[:, :nms_pre], rank[:, :nms_pre, None].expand(-1, -1, 4)
                deltas, level_anchor = deltas.gather(1, rank), level_anchor.gather(1, rank)
            level_scores.append(scores)
            level_deltas.append(deltas)
            level_anchors.append(level_anchor)

        num_candidates = max(scores.size(1) for scores in level_scores)
        valid = torch.stack(
            [torch.arange(num_candidates, device=scores.device) < scores.size(1) for scores in level_scores]
        )[None].expand(num_imgs, -1, -1)
        scores = torch.stack([_padded(scores, num_candidates, 0) for scores in level_scores], dim=1)
        deltas = torch.stack([_padded(deltas, num_candidates, 0) for deltas in level_deltas], dim=1)
        level_anchors = torch.stack([_padded(anchor, num_candidates, 0) for anchor in level_anchors], dim=1)
        boxes = self.bbox_coder.decode(level_anchors.reshape(-1, 4), deltas.reshape(-1, 4), max_shape=None)
        boxes = boxes.view(num_imgs, -1, num_candidates, 4)
        if getattr(self.bbox_coder, "clip_border", True):
            heights, widths = (boxes.new_tensor([meta["img_shape"][i] for meta in img_metas]) for i in (0, 1))
            bounds = torch.stack([widths, heights, widths, heights], dim=-1)[:, None, None, :]
            boxes = torch.minimum(boxes.clamp(min=0), bounds)
        return boxes, scores, valid.clone()

    def aug_test_rpn(self, feats, img_metas):
        """mmdet's test-time augmentation, given mmdet's proposal lists (merging reads them back anyway)."""
        samples_per_gpu = len(img_metas[0])
        aug_proposals = [[] for _ in range(samples_per_gpu)]
        for x, img_meta in zip(feats, img_metas, strict=True):
            for i, proposals in enumerate(self.simple_test_rpn(x, img_meta)):
                aug_proposals[i].append(proposals[is_proposal(proposals)])
        aug_img_metas = [[metas[i] for metas in img_metas] for i in range(samples_per_gpu)]
        return [
            merge_aug_proposals(proposals, aug_img_meta, self.test_cfg)
            for proposals, aug_img_meta in zip(aug_proposals, aug_img_metas, strict=True)
        ]


def _padded(values: torch.Tensor, length: int, fill) -> torch.Tensor:
    """`values` (B, n, ...) padded with `fill` to (B, length, ...)."""
    missing = length - values.size(1)
    if missing == 0:
        return values
    return torch.cat([values, values.new_full((values.size(0), missing, *values.shape[2:]), fill)], dim=1)
