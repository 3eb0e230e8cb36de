"""The catch-up objective: KL divergence between whole-feature-map softmax distributions."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def feature_kl_divergence(target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """KL(P_target || P_pred) summed over each image and divided by the batch size.

    Each image's feature map (C, H, W) is flattened to one vector and turned into a
    distribution with a softmax over all C*H*W entries. Computed in fp32 even under fp16
    training: the softmax over ~10^7 entries underflows in half precision.
    """
    if target.shape != pred.shape:
        raise ValueError(f"feature_kl_divergence: shapes differ, {tuple(target.shape)} vs {tuple(pred.shape)}")
    log_p_target = F.log_softmax(target.flatten(1).float(), dim=1)
    log_p_pred = F.log_softmax(pred.flatten(1).float(), dim=1)
    return (log_p_target.exp() * (log_p_target - log_p_pred)).sum() / target.size(0)
