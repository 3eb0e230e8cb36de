"""LCPDetector's two training modes: trainable sets, losses, gradients, and frozen parameters
staying bit-identical under mmcv's SGD (momentum, weight decay, lr_mult) in a real runner."""

import logging

import pytest
import torch
from mmcv.runner import HOOKS, EpochBasedRunner, Hook, build_optimizer

import lcp.hooks  # noqa: F401  registers TrainModeHook
from helpers.model_configs import batch, build, tiny_lcp_cfg
from lcp.errors import LCPError

CATCH_UP_TRAINABLE = ("backbone.catch_up_learner.",)
CRUX_TRAINABLE = (
    "crux_learner.",
    "backbone.catch_up_fusion.",
    "backbone.layer3.",
    "backbone.layer4.",
    "neck.",
    "rpn_head.",
    "roi_head.",
)
OPTIMIZER = dict(
    type="SGD",
    lr=0.01,
    momentum=0.9,
    weight_decay=1e-4,
    paramwise_cfg=dict(custom_keys={"crux_learner": dict(lr_mult=100)}),
)


def trainable(model):
    return {name for name, param in model.named_parameters() if param.requires_grad}


def names_with(model, prefixes):
    return {name for name, _ in model.named_parameters() if name.startswith(prefixes)}


@pytest.mark.parametrize("frozen_stages", [1, -1])
def test_trainable_sets_of_both_modes(frozen_stages):
    model = build(tiny_lcp_cfg(frozen_stages=frozen_stages))
    assert model.train_mode is None
    model.set_train_mode("catch_up_learner")
    assert trainable(model) == names_with(model, CATCH_UP_TRAINABLE) != set()
    model.set_train_mode("crux_learner")
    assert trainable(model) == names_with(model, CRUX_TRAINABLE)
    frozen = {name for name, _ in model.named_parameters()} - trainable(model)
    assert frozen == names_with(
        model,
        ("backbone.conv1.", "backbone.bn1.", "backbone.layer1.", "backbone.layer2.", "backbone.catch_up_learner."),
    )
    model.set_train_mode("catch_up_learner")  # switching back restores the catch-up set exactly
    assert trainable(model) == names_with(model, CATCH_UP_TRAINABLE)


def test_bad_modes_and_missing_inputs_are_clear_errors():
    model = build(tiny_lcp_cfg())
    data = batch()
    with pytest.raises(LCPError, match="train_mode is not set"):
        model.forward_train(**data)
    with pytest.raises(LCPError, match="unknown train mode 'crux'"):
        model.set_train_mode("crux")
    model.set_train_mode("catch_up_learner")
    data.pop("img_df")
    with pytest.raises(LCPError, match="catch_up_learner mode needs img_df"):
        model(**data, return_loss=True)


def test_crux_mode_gives_cascade_losses_and_gradients_reach_the_crux_learner():
    torch.manual_seed(0)
    model = build(tiny_lcp_cfg())
    model.set_train_mode("crux_learner")
    model.train()
    losses = model(**batch(), return_loss=True)
    assert {"loss_rpn_cls", "loss_rpn_bbox", "s0.loss_cls", "s0.loss_bbox", "s2.loss_cls"} <= set(losses)
    assert "kl_loss" not in losses
    loss, _ = model._parse_losses(losses)
    loss.backward()
    for name, param in model.named_parameters():
        if name.startswith("crux_learner."):
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        elif not param.requires_grad:
            assert param.grad is None, name


def test_switching_mode_stops_momentum_and_decay_even_if_grads_are_zeroed_not_cleared():
    """Optimizer hooks that zero gradients in place (zero_grad(set_to_none=False)) would leave
    zero tensors on the newly frozen parameters, and SGD would still apply momentum and weight
    decay to them; set_train_mode clears those gradients, so nothing moves."""
    torch.manual_seed(0)
    model = build(tiny_lcp_cfg())
    optimizer = build_optimizer(model, OPTIMIZER)
    model.train()
    for mode in ["catch_up_learner", "crux_learner", "catch_up_learner"]:
        model.set_train_mode(mode)
        frozen = {name: param.detach().clone() for name, param in model.named_parameters() if not param.requires_grad}
        optimizer.zero_grad(set_to_none=False)
        loss, _ = model._parse_losses(model(**batch(), return_loss=True))
        loss.backward()
        optimizer.step()
        for name, param in model.named_parameters():
            if name in frozen:
                assert torch.equal(param, frozen[name]), f"{mode}: frozen {name} moved"


class ParamSnapshots(Hook):
    """Record the train mode and all parameters before and after every epoch."""

    def __init__(self):
        self.epochs = []

    def before_train_epoch(self, runner):
        self.epochs.append(
            dict(mode=runner.model.train_mode, trainable=trainable(runner.model), before=self._snapshot(runner.model))
        )

    def after_train_epoch(self, runner):
        self.epochs[-1]["after"] = self._snapshot(runner.model)

    @staticmethod
    def _snapshot(model):
        return {name: param.detach().clone() for name, param in model.named_parameters()}


def make_runner(model, work_dir, max_epochs):
    optimizer = build_optimizer(model, OPTIMIZER)
    runner = EpochBasedRunner(
        model,
        optimizer=optimizer,
        work_dir=str(work_dir),
        logger=logging.getLogger("lcp-test-runner"),
        max_epochs=max_epochs,
    )
    runner.register_training_hooks(
        lr_config=None, optimizer_config=dict(grad_clip=None), checkpoint_config=dict(interval=1)
    )
    runner.register_hook(
        HOOKS.build(
            dict(type="TrainModeHook", num_epoch=[1, 1, 2], modes=["catch_up_learner", "crux_learner", "alter"])
        )
    )
    snapshots = ParamSnapshots()
    runner.register_hook(snapshots, priority="LOW")  # after TrainModeHook (NORMAL)
    return runner, snapshots


def check_epoch(epoch):
    """Frozen parameters bit-identical; every trainable part moved (single parameters may not:
    a zero bias whose gradient is exactly zero, e.g. an FPN level no sampled anchor used)."""
    changed = {name for name, before in epoch["before"].items() if not torch.equal(before, epoch["after"][name])}
    assert changed <= epoch["trainable"], (
        f"{epoch['mode']}: frozen parameters changed: {sorted(changed - epoch['trainable'])}"
    )
    prefixes = CATCH_UP_TRAINABLE if epoch["mode"] == "catch_up_learner" else CRUX_TRAINABLE
    for prefix in prefixes:
        assert any(name.startswith(prefix) for name in changed), f"{epoch['mode']}: nothing in {prefix} changed"


@pytest.mark.slow
def test_runner_keeps_frozen_params_bit_identical_and_resumes_in_the_same_modes(tmp_path):
    torch.manual_seed(0)
    data = [batch(seed=0)]  # one iteration per epoch
    model = build(tiny_lcp_cfg())
    runner, snapshots = make_runner(model, tmp_path, max_epochs=4)
    for group in runner.optimizer.param_groups:
        names = [name for name, param in model.named_parameters() if param is group["params"][0]]
        expected_lr = 1.0 if names[0].startswith("crux_learner.") else 0.01
        assert group["lr"] == pytest.approx(expected_lr), names[0]
    runner.run([data], [("train", 1)])

    modes = [epoch["mode"] for epoch in snapshots.epochs]
    assert modes == ["catch_up_learner", "crux_learner", "catch_up_learner", "crux_learner"]
    for epoch in snapshots.epochs:
        check_epoch(epoch)
    # The catch-up learner, stepped with momentum in epoch 1, stays put in epoch 2's crux mode.
    momentum = runner.optimizer.state[model.backbone.catch_up_learner.layers.conv1.weight]
    assert momentum["momentum_buffer"].abs().sum() > 0

    resumed_model = build(tiny_lcp_cfg())
    resumed, resumed_snapshots = make_runner(resumed_model, tmp_path / "resumed", max_epochs=4)
    resumed.resume(str(tmp_path / "epoch_2.pth"))
    resumed.run([data], [("train", 1)])
    assert [epoch["mode"] for epoch in resumed_snapshots.epochs] == modes[2:]
    for epoch in resumed_snapshots.epochs:
        check_epoch(epoch)
