"""The crux learner: a light full-resolution network that predicts which pixels matter for detection."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.runner import BaseModule
from mmdet.models.builder import MODELS


class HeatBlock(nn.Module):
    """1x1 expand -> ReLU -> depthwise kxk -> ReLU -> 1x1 project; no norm, no residual."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        hidden = 3 * in_channels
        self.conv1 = nn.Conv2d(in_channels, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden)
        self.conv3 = nn.Conv2d(hidden, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))


@MODELS.register_module()
class CruxLearner(BaseModule):
    """Predict a one-channel heat map h of the image and mask the image with it.

    mask = sigmoid(k * (h - mask_thr)); forward returns img * mask. `img` is the
    mean/std-normalised input, so a masked-out pixel becomes the mean colour.

    Blocks (`h_evaluation.i`): in_channels -> mid_channels -> ... -> mid_channels -> 1,
    depthwise kernel 3 in every block but the last, which uses 5.
    """

    def __init__(
        self,
        in_channels: int = 3,
        mid_channels: int = 16,
        num_blocks: int = 3,
        k: float = 10.0,
        mask_thr: float = 0.5,
        init_cfg=None,
    ):
        super().__init__(init_cfg)
        if num_blocks < 1:
            raise ValueError(f"CruxLearner: num_blocks must be >= 1, got {num_blocks}")
        kernel_sizes = (3,) * (num_blocks - 1) + (5,)
        channels = [in_channels] + [mid_channels] * (num_blocks - 1) + [1]
        self.h_evaluation = nn.Sequential(
            *[HeatBlock(channels[i], channels[i + 1], kernel_sizes[i]) for i in range(num_blocks)]
        )
        self.k = float(k)
        self.mask_thr = float(mask_thr)

    def start_in_sensitive_range(self) -> None:
        """Centre the mask at 0.5, where sigmoid(k * (h - mask_thr)) has its steepest slope.

        PyTorch's default initialisation gives h close to 0, so the mask starts saturated at
        sigmoid(-k * mask_thr) (0.007 for k=10, thr=0.5) with a slope of about 0.07 * k, and a
        short schedule never moves it. The last convolution's bias becomes mask_thr; its
        weights stay random, so the mask keeps its small spatial variation and every layer
        gets a gradient.
        """
        with torch.no_grad():
            self.h_evaluation[-1].conv3.bias.fill_(self.mask_thr)

    def heatmap(self, img: torch.Tensor) -> torch.Tensor:
        """The raw heat map h, shape (N, 1, H, W)."""
        return self.h_evaluation(img)

    def mask_from_heatmap(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.k * (h - self.mask_thr))

    def mask(self, img: torch.Tensor) -> torch.Tensor:
        """The soft crux mask in [0, 1], shape (N, 1, H, W); what `lcp infer` draws."""
        return self.mask_from_heatmap(self.heatmap(img))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """The crux image img * mask."""
        return img * self.mask(img)
