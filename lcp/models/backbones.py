"""LCP backbones: mmdet's ResNet / ResNeXt with a crux branch, a catch-up learner and a fusion conv."""

from __future__ import annotations

import torch
import torch.nn as nn
from mmdet.models.backbones import ResNet, ResNeXt
from mmdet.models.builder import BACKBONES, MODELS


class CatchUpBackboneMixin:
    """The LCP part shared by LCPResNet and LCPResNeXt (put before the mmdet class in the bases).

    forward(img, crux):
      C2, C3 = layer1, layer2 outputs of the raw image;
      catch  = layer2 output of the crux image + catch_up_learner(its layer1 output);
      x      = catch_up_fusion(concat[C3, catch])  (1x1 conv, 2*C3 -> C3 channels, bias);
      C4, C5 = layer3(x), layer4(C4);  returns (C2, C3, C4, C5) filtered by out_indices.
    The catch-up learner's and the fusion's channel counts follow the depth: 256 -> 512
    for Bottleneck ResNets, 64 -> 128 for BasicBlock ones (ResNet-18/34).
    """

    def __init__(self, *args, catch_up_learner=None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.num_stages < 2 or self.strides[1] != 2:
            raise ValueError(
                f"{type(self).__name__}: the catch-up learner needs layer2 with stride 2 "
                f"(num_stages={self.num_stages}, strides={tuple(self.strides)})")
        c2_channels = self.block.expansion * self.base_channels
        c3_channels = 2 * c2_channels
        cfg = dict(type="CatchUpLearner") if catch_up_learner is None else dict(catch_up_learner)
        cfg.setdefault("in_channels", c2_channels)
        cfg.setdefault("out_channels", c3_channels)
        self.catch_up_learner = MODELS.build(cfg)
        self.catch_up_fusion = nn.Conv2d(2 * c3_channels, c3_channels, 1)
        # mmdet's ResNet falls back to Kaiming init for every Conv2d when given neither
        # init_cfg nor pretrained; the LCP-only modules must keep PyTorch's default init.
        self._lcp_modules_keep_default_init = (
            kwargs.get("init_cfg") is None and kwargs.get("pretrained") is None)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        return self.maxpool(x)

    def shallow(self, x: torch.Tensor, catch_up: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(layer1, layer2) outputs of x; with catch_up, layer2's output gets the catch-up residual."""
        c2 = getattr(self, self.res_layers[0])(self._stem(x))
        c3 = getattr(self, self.res_layers[1])(c2)
        if catch_up:
            c3 = c3 + self.catch_up_learner(c2)
        return c2, c3

    def forward(self, img: torch.Tensor, crux: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # No explicit no_grad on the raw-image path: its parameters are frozen whenever the
        # detector trains and `img` needs no gradient, so autograd records nothing for it,
        # while the crux path keeps its graph so gradients reach the crux learner.
        c2, c3 = self.shallow(img, catch_up=False)
        _, catch = self.shallow(crux, catch_up=True)
        x = self.catch_up_fusion(torch.cat([c3, catch], dim=1))
        outs = [c2, c3]
        for layer_name in self.res_layers[2:]:
            x = getattr(self, layer_name)(x)
            outs.append(x)
        return tuple(out for i, out in enumerate(outs) if i in self.out_indices)

    def init_weights(self) -> None:
        if not self._lcp_modules_keep_default_init:
            super().init_weights()
            return
        lcp_modules = (self.catch_up_learner, self.catch_up_fusion)
        saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in lcp_modules]
        super().init_weights()
        for module, state in zip(lcp_modules, saved):
            module.load_state_dict(state)


@BACKBONES.register_module()
class LCPResNet(CatchUpBackboneMixin, ResNet):
    """mmdet's ResNet (depth 18/34/50/101/152) with LCP's catch-up branch; forward(img, crux)."""


@BACKBONES.register_module()
class LCPResNeXt(CatchUpBackboneMixin, ResNeXt):
    """mmdet's ResNeXt (depth 50/101/152) with LCP's catch-up branch; forward(img, crux)."""
