"""The catch-up learner: a residual added to layer2's output that pushes crux features toward clean ones."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
from mmcv.runner import BaseModule
from mmdet.models.builder import MODELS


@MODELS.register_module()
class CatchUpLearner(BaseModule):
    """Map a stride-4 layer1 map to a residual of layer2's (stride-8) shape.

    pooling 2x2/2 -> conv1 3x3 -> ReLU -> conv2 3x3 -> conv3 3x3. Exactly one ReLU: the
    released weights were trained with this function.

    The pooling uses ceil_mode: layer2's stride-2 conv gives ceil(H/2) rows, a plain 2x2
    max-pool floor(H/2). ceil_mode equals padding an odd map with -inf by one row/column,
    so odd sizes line up with layer2, and even sizes compute exactly the plain pooling.
    """

    def __init__(self, in_channels: int = 256, out_channels: int = 512, init_cfg=None):
        super().__init__(init_cfg)
        self.layers = nn.Sequential(
            OrderedDict(
                [
                    ("pooling", nn.MaxPool2d(2, stride=2, ceil_mode=True)),
                    ("conv1", nn.Conv2d(in_channels, out_channels, 3, padding=1)),
                    ("relu", nn.ReLU(inplace=True)),
                    ("conv2", nn.Conv2d(out_channels, out_channels, 3, padding=1)),
                    ("conv3", nn.Conv2d(out_channels, out_channels, 3, padding=1)),
                ]
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
