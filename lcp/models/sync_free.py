"""The project's sync-free components and the mmdet components they replace, by config type.

The configs use the sync-free ones (lcp/models/assigners.py, samplers.py, rpn_head.py,
roi_heads.py, bbox_heads.py, roi_extractors.py); `with_stock_mmdet` turns a model config
back into mmdet's, as the bench's baseline rows and the equality tests need.
"""

from __future__ import annotations

import copy

STOCK_TYPES = {
    "OneSyncCascadeRCNN": "CascadeRCNN",
    "SyncFreeMaxIoUAssigner": "MaxIoUAssigner",
    "SyncFreeRandomSampler": "RandomSampler",
    "SyncFreeRPNHead": "RPNHead",
    "SyncFreeCascadeRoIHead": "CascadeRoIHead",
    "SyncFreeShared2FCBBoxHead": "Shared2FCBBoxHead",
    "SyncFreeRoIExtractor": "SingleRoIExtractor",
}
SYNC_FREE_TYPES = {stock: sync_free for sync_free, stock in STOCK_TYPES.items()}


def _retyped(cfg, types: dict):
    if isinstance(cfg, dict):
        return type(cfg)(
            {
                key: types.get(value, value) if key == "type" and isinstance(value, str) else _retyped(value, types)
                for key, value in cfg.items()
            }
        )
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_retyped(item, types) for item in cfg)
    return cfg


def with_stock_mmdet(model_cfg):
    """A copy of a model config with mmdet's components where it has the sync-free ones."""
    return _retyped(copy.deepcopy(model_cfg), STOCK_TYPES)


def with_sync_free(model_cfg):
    """A copy of a model config with the sync-free components where it has mmdet's."""
    return _retyped(copy.deepcopy(model_cfg), SYNC_FREE_TYPES)


def check_proposal_slots(rpn_head, roi_head) -> None:
    """SyncFreeRPNHead returns every image's proposals in fixed slots, the empty ones marked absent;
    only SyncFreeCascadeRoIHead skips those. mmdet's RoI heads would take them for real boxes
    (background in training, junk at test time), so a detector that pairs them is refused (mmcv's
    registry puts the detector's name before the message)."""
    from lcp.errors import LCPError
    from lcp.models.roi_heads import SyncFreeCascadeRoIHead
    from lcp.models.rpn_head import SyncFreeRPNHead

    if isinstance(rpn_head, SyncFreeRPNHead) and not isinstance(roi_head, SyncFreeCascadeRoIHead):
        raise LCPError(
            "rpn_head SyncFreeRPNHead pads its proposals to fixed slots that only "
            f"SyncFreeCascadeRoIHead skips, and roi_head is {type(roi_head).__name__}; use "
            "roi_head=dict(type='SyncFreeCascadeRoIHead', ...) or rpn_head=dict(type='RPNHead', ...)"
        )
