"""Loss parsing with one host transfer per step, and the plain Cascade R-CNN that uses it.

mmdet's BaseDetector._parse_losses turns each logged value into a Python float with its own
`.item()` (and, under DDP, its own all_reduce): on a GPU, one wait for the device per
value, 12 per Cascade R-CNN training step. `parse_losses` computes the same total loss and
the same log values (each value's mean, the float32 value `.item()` would give) from one
stacked tensor: one all_reduce and one transfer. mmcv's runner logs every value as before.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.distributed as dist
from mmdet.models.builder import DETECTORS
from mmdet.models.detectors import CascadeRCNN

from lcp.apis.config import refuse_unresolved
from lcp.models.sync_free import check_proposal_slots


def parse_losses(losses: dict) -> tuple[torch.Tensor, OrderedDict]:
    """(total loss to backpropagate, {name: float} to log), as mmdet's BaseDetector._parse_losses."""
    log_vars = OrderedDict()
    for name, value in losses.items():
        if isinstance(value, torch.Tensor):
            log_vars[name] = value.mean()
        elif isinstance(value, list):
            log_vars[name] = sum(item.mean() for item in value)
        else:
            raise TypeError(f"{name} is not a tensor or list of tensors")
    loss = sum(value for name, value in log_vars.items() if "loss" in name)

    distributed = dist.is_available() and dist.is_initialized()
    if distributed:  # different log keys on different GPUs would make all_reduce wait forever
        length = torch.tensor(len(log_vars), device=loss.device)
        dist.all_reduce(length)
        if length.item() != len(log_vars) * dist.get_world_size():
            raise RuntimeError(
                f"rank {dist.get_rank()} logs {len(log_vars)} values ({','.join(log_vars)}), "
                "not as many as the other ranks"
            )
    log_vars["loss"] = loss
    stacked = torch.stack([value.detach().float().reshape(()) for value in log_vars.values()])
    if distributed:
        dist.all_reduce(stacked.div_(dist.get_world_size()))
    for name, value in zip(list(log_vars), stacked.tolist(), strict=True):
        log_vars[name] = value
    return loss, log_vars


@DETECTORS.register_module()
class OneSyncCascadeRCNN(CascadeRCNN):
    """mmdet's CascadeRCNN (same modules, same checkpoints) whose losses reach the log in one transfer."""

    def __init__(self, *args, **kwargs):
        refuse_unresolved({**dict(enumerate(args)), **kwargs})
        super().__init__(*args, **kwargs)
        check_proposal_slots(self.rpn_head, self.roi_head)

    def _parse_losses(self, losses):
        return parse_losses(losses)
