"""DivergenceHook: a nan loss stops the training only when the step left non-finite weights."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from lcp.errors import LCPError
from lcp.hooks.divergence import DivergenceHook, nonfinite_losses


def runner_after_step(model: torch.nn.Module, log_vars: dict) -> SimpleNamespace:
    """What mmcv's runner holds when after_train_iter runs: the step's logged values, the model."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
    return SimpleNamespace(model=model, optimizer=optimizer, outputs={"log_vars": log_vars}, epoch=2, inner_iter=6)


def test_only_non_finite_loss_terms_count():
    log_vars = {"loss_cls": math.nan, "loss_bbox": 0.5, "acc": math.nan, "loss": math.inf, "num": 3}
    found = nonfinite_losses(log_vars)
    assert list(found) == ["loss_cls", "loss"] and math.isnan(found["loss_cls"]) and found["loss"] == math.inf


def test_a_nan_loss_with_finite_weights_goes_on():
    """fp16's loss scaling skips a step whose gradients overflowed: the weights stay as they were."""
    model = torch.nn.Linear(2, 2)
    DivergenceHook().after_train_iter(runner_after_step(model, {"loss_cls": math.nan, "loss": math.nan}))


def test_a_nan_loss_that_left_nan_weights_stops_the_training_naming_them():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    with torch.no_grad():
        model[1].bias[0] = math.nan
    with pytest.raises(LCPError) as raised:
        DivergenceHook().after_train_iter(runner_after_step(model, {"loss_cls": math.nan, "loss": math.nan}))
    assert str(raised.value).startswith(
        "training diverged in epoch 3, iteration 7: loss_cls nan, loss nan, and the weights are no longer "
        "finite (1.bias); lower the learning rate (optimizer.lr, 0.02 in this run)"
    )


def test_finite_losses_never_look_at_the_weights():
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.bias[0] = math.nan  # not reached: the check of the weights runs only after a non-finite loss
    DivergenceHook().after_train_iter(runner_after_step(model, {"loss_cls": 0.3, "loss": 0.3}))


def test_weights_that_are_not_finite_before_the_first_step_are_named_as_a_nan_checkpoint():
    """A checkpoint an earlier lcp saved after a nan loss, resumed: the first step stopped the run
    with advice about the learning rate, which was not the cause."""
    model = torch.nn.Linear(2, 2)
    hook = DivergenceHook()
    hook.before_run(runner_after_step(model, {}))  # finite: nothing to say
    with torch.no_grad():
        model.weight[0, 0] = math.inf
    with pytest.raises(LCPError) as raised:
        hook.before_run(runner_after_step(model, {}))
    assert str(raised.value).startswith("the weights this training starts from are not finite (weight): ")
