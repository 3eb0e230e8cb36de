"""Crux learners set by hand for the crux-health tests: stuck (a flat mask), live (a mask that
varies across the image around 0.5) or diverged (a NaN mask), through the last conv of the last
heat block."""

from __future__ import annotations

import torch


def make_stuck(crux_learner, h: float = -0.2) -> None:
    """h = `h` on every pixel: the mask is sigmoid(k * (h - mask_thr)) everywhere (-0.2: ~0.0009)."""
    conv = crux_learner.h_evaluation[-1].conv3
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(h)


def make_diverged(crux_learner) -> None:
    """A NaN bias: the mask is NaN on every pixel, as after a diverged training."""
    with torch.no_grad():
        crux_learner.h_evaluation[-1].conv3.bias.fill_(float("nan"))


def make_live(crux_learner, img: torch.Tensor, spread: float = 0.2, seed: int = 0) -> None:
    """Random last-conv weights scaled so that h on `img` has std `spread`, centred on mask_thr:
    the mask then keeps some pixels and fades others (spread 0.2: k * spread = 2 logits)."""
    conv = crux_learner.h_evaluation[-1].conv3
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=torch.Generator().manual_seed(seed)))
        conv.bias.zero_()
        h = crux_learner.heatmap(img)
        conv.weight.mul_(spread / h.std())
        conv.bias.fill_(crux_learner.mask_thr - float(h.mean() * spread / h.std()))
