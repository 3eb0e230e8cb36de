"""lcp.models.loss_parsing: mmdet's loss parsing (same total loss, same log) with one host transfer."""

from __future__ import annotations

import pytest
import torch
from mmdet.models.detectors.base import BaseDetector

from helpers.sync_probe import SyncingOps
from lcp.models.loss_parsing import parse_losses


def cascade_like_losses():
    generator = torch.Generator().manual_seed(0)
    values = lambda *shape: torch.rand(*shape, generator=generator, requires_grad=True)  # noqa: E731
    return {
        "loss_rpn_cls": [values(4), values(2), values(1)],
        "loss_rpn_bbox": [values(3), values(2)],
        **{f"s{i}.{name}": values(()) for i in range(3) for name in ("loss_cls", "acc", "loss_bbox")},
        "s0.half": values(()).half(),
    }


def test_same_total_loss_gradients_and_log_as_mmdet():
    losses = cascade_like_losses()
    expected_loss, expected_log = BaseDetector._parse_losses(None, losses)
    loss, log = parse_losses(losses)
    assert loss.item() == expected_loss.item()
    assert list(log) == list(expected_log) and log == expected_log  # same keys, order and floats
    leaves = [v for value in losses.values() for v in (value if isinstance(value, list) else [value])]
    expected_grads = torch.autograd.grad(expected_loss, leaves, allow_unused=True, retain_graph=True)
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    for got, expected in zip(grads, expected_grads, strict=True):
        assert (got is None and expected is None) or torch.equal(got, expected)


def test_one_host_transfer_where_mmdet_makes_one_per_value():
    losses = cascade_like_losses()
    with SyncingOps() as mmdet:
        BaseDetector._parse_losses(None, losses)
    with SyncingOps() as ours:
        parse_losses(losses)
    assert len(mmdet.seen) == len(losses) + 1  # one .item() per logged value and the total
    # ours reads all values back with one tolist(), a copy the dispatch probe does not see
    assert ours.seen == []


def test_a_value_that_is_no_tensor_is_named():
    with pytest.raises(TypeError, match="loss_x is not a tensor"):
        parse_losses({"loss_x": 1.0})
