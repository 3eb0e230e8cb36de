"""LCP backbones: mmdet's ResNet / ResNeXt with a crux branch, a catch-up learner and a fusion conv."""

from __future__ import annotations

import torch
import torch.nn as nn
from mmdet.models.backbones import ResNet, ResNeXt
from mmdet.models.builder import BACKBONES, MODELS
from torch.nn.modules.batchnorm import _BatchNorm

SHALLOW_BATCHING = ("auto", "always", "never")


class CatchUpBackboneMixin:
    """The LCP part shared by LCPResNet and LCPResNeXt (put before the mmdet class in the bases).

    forward(img, crux):
      C2, C3 = layer1, layer2 outputs of the raw image;
      catch  = layer2 output of the crux image + catch_up_learner(its layer1 output);
      x      = catch_up_fusion(concat[C3, catch])  (1x1 conv, 2*C3 -> C3 channels, bias);
      C4, C5 = layer3(x), layer4(C4);  returns (C2, C3, C4, C5) filtered by out_indices.
    The catch-up learner's and the fusion's channel counts follow the depth: 256 -> 512
    for Bottleneck ResNets, 64 -> 128 for BasicBlock ones (ResNet-18/34).

    shallow_batching decides whether the raw and the crux image go through the stem, layer1
    and layer2 as one batch (concatenated on the batch dimension) instead of two passes.
    Both compute the same function while BatchNorm uses running statistics (norm_eval, or
    eval mode); otherwise the passes stay separate whatever the setting.
      'auto'   (default) batch when no gradient has to flow back through the shallow
               stages: at test time and for the catch-up learner's KL loss. In crux-learner
               training the crux image needs an input gradient and the raw one does not;
               one batched pass would make backward compute it for both. Measured on an
               H100 (bench/bench_lcp_model.py): batching there was no faster and took
               2.4 GiB more memory in fp32; at test and in catch-up training it was 4-13%
               faster in fp16 and even, within noise, in fp32.
      'always' batch whenever the function allows it, gradients or not.
      'never'  two passes, the straightforward implementation.
    """

    def __init__(self, *args, catch_up_learner=None, shallow_batching: str = "auto", **kwargs):
        if shallow_batching not in SHALLOW_BATCHING:
            raise ValueError(
                f"{type(self).__name__}: shallow_batching must be one of {SHALLOW_BATCHING}, got {shallow_batching!r}"
            )
        super().__init__(*args, **kwargs)
        self.shallow_batching = shallow_batching
        if self.num_stages < 2 or self.strides[1] != 2:
            raise ValueError(
                f"{type(self).__name__}: the catch-up learner needs layer2 with stride 2 "
                f"(num_stages={self.num_stages}, strides={tuple(self.strides)})"
            )
        c2_channels = self.block.expansion * self.base_channels
        c3_channels = 2 * c2_channels
        cfg = dict(type="CatchUpLearner") if catch_up_learner is None else dict(catch_up_learner)
        cfg.setdefault("in_channels", c2_channels)
        cfg.setdefault("out_channels", c3_channels)
        self.catch_up_learner = MODELS.build(cfg)
        self.catch_up_fusion = nn.Conv2d(2 * c3_channels, c3_channels, 1)
        # mmdet's ResNet falls back to Kaiming init for every Conv2d when given neither
        # init_cfg nor pretrained; the LCP-only modules must keep PyTorch's default init.
        self._lcp_modules_keep_default_init = kwargs.get("init_cfg") is None and kwargs.get("pretrained") is None

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

    def _shallow_modules(self) -> list[nn.Module]:
        stem = [self.stem] if self.deep_stem else [self.conv1, self.norm1]
        return stem + [getattr(self, name) for name in self.res_layers[:2]]

    def shallow_params_train(self) -> bool:
        """Whether any parameter of the stem, layer1 or layer2 requires a gradient."""
        return any(p.requires_grad for module in self._shallow_modules() for p in module.parameters())

    def batch_shallow_passes(self, needs_input_grad: bool) -> bool:
        """Whether two images' shallow passes may run as one batch (see the class docstring).

        needs_input_grad: some input of the passes requires a gradient (the crux image
        while the crux learner trains).
        """
        if self.shallow_batching == "never":
            return False
        batch_statistics = any(
            m.training for module in self._shallow_modules() for m in module.modules() if isinstance(m, _BatchNorm)
        )
        if batch_statistics:  # each image's statistics would mix with the other's
            return False
        if self.shallow_batching == "always":
            return True
        return not (torch.is_grad_enabled() and (needs_input_grad or self.shallow_params_train()))

    def raw_and_crux_features(self, img: torch.Tensor, crux: torch.Tensor):
        """C2, C3 of the raw image and the catch-up layer2 output of the crux image."""
        if self.batch_shallow_passes(needs_input_grad=img.requires_grad or crux.requires_grad):
            both_c2, both_c3 = self.shallow(torch.cat([img, crux]), catch_up=False)
            n = img.size(0)
            c2, crux_c2 = both_c2[:n], both_c2[n:]
            return c2, both_c3[:n], both_c3[n:] + self.catch_up_learner(crux_c2)
        # In crux-learner training the raw image's C2/C3 feed the trainable FPN but nothing
        # upstream of them trains (stem, layer1, layer2 are frozen, img needs no gradient).
        # no_grad keeps autograd from recording that path at all, so its activations are
        # freed at once and backward never visits it; only the crux path keeps its graph,
        # through the frozen stages, down to the crux learner.
        raw_needs_grad = img.requires_grad or self.shallow_params_train()
        with torch.set_grad_enabled(torch.is_grad_enabled() and raw_needs_grad):
            c2, c3 = self.shallow(img, catch_up=False)
        _, catch = self.shallow(crux, catch_up=True)
        return c2, c3, catch

    def forward(self, img: torch.Tensor, crux: torch.Tensor) -> tuple[torch.Tensor, ...]:
        c2, c3, catch = self.raw_and_crux_features(img, crux)
        x = self.catch_up_fusion(torch.cat([c3, catch], dim=1))
        outs = [c2, c3]
        for layer_name in self.res_layers[2:]:
            x = getattr(self, layer_name)(x)
            outs.append(x)
        return tuple(out for i, out in enumerate(outs) if i in self.out_indices)

    def start_fusion_as_passthrough(self) -> None:
        """catch_up_fusion = [identity, 0] with no bias: its output is C3 whatever the crux
        branch computes, so the backbone equals the plain ResNet with the same weights."""
        with torch.no_grad():
            weight = self.catch_up_fusion.weight
            channels = weight.shape[0]
            weight.zero_()
            weight[:, :channels, 0, 0].copy_(torch.eye(channels, dtype=weight.dtype))
            self.catch_up_fusion.bias.zero_()

    def init_weights(self) -> None:
        if not self._lcp_modules_keep_default_init:
            super().init_weights()
            return
        lcp_modules = (self.catch_up_learner, self.catch_up_fusion)
        saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in lcp_modules]
        super().init_weights()
        for module, state in zip(lcp_modules, saved, strict=True):
            module.load_state_dict(state)


@BACKBONES.register_module()
class LCPResNet(CatchUpBackboneMixin, ResNet):
    """mmdet's ResNet (depth 18/34/50/101/152) with LCP's catch-up branch; forward(img, crux)."""


@BACKBONES.register_module()
class LCPResNeXt(CatchUpBackboneMixin, ResNeXt):
    """mmdet's ResNeXt (depth 50/101/152) with LCP's catch-up branch; forward(img, crux)."""
