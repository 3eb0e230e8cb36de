"""mmdet's SingleRoIExtractor without per-level nonzero.

mmdet gathers each pyramid level's RoIs with nonzero (a host sync per level) and scatters
their features back. Here every level's RoIAlign sees all RoIs, those of other levels
collapsed to an empty box at the origin: RoIAlign samples no point for an empty box
(adaptive sampling takes ceil(0 / output size) = 0 points per bin), so the extra RoIs
cost almost nothing, and torch.where keeps each RoI's features from its own level.
The same features and gradients as mmdet's.
"""

from __future__ import annotations

import torch
from mmcv.runner import force_fp32
from mmdet.models.builder import ROI_EXTRACTORS
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor


@ROI_EXTRACTORS.register_module()
class SyncFreeRoIExtractor(SingleRoIExtractor):
    """SingleRoIExtractor (same arguments) that selects each RoI's level with masks instead of nonzero."""

    @force_fp32(apply_to=("feats",), out_fp16=True)
    def forward(self, feats, rois, roi_scale_factor=None):
        num_levels = len(feats)
        if num_levels == 1 or rois.size(0) == 0:
            return super().forward(feats, rois, roi_scale_factor)
        target_lvls = self.map_roi_levels(rois, num_levels)
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        # the image index stays: an empty box in another image of the batch is as cheap
        empty = torch.cat([rois[:, :1], rois.new_zeros(rois.size(0), 4)], dim=1)
        roi_feats = None
        for level in range(num_levels):
            at_level = target_lvls == level
            level_feats = self.roi_layers[level](feats[level], torch.where(at_level[:, None], rois, empty))
            roi_feats = (
                level_feats if roi_feats is None else torch.where(at_level[:, None, None, None], level_feats, roi_feats)
            )
        return roi_feats
