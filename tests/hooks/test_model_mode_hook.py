"""The train-mode plan: a pure function of the epoch, so resuming anywhere trains the same modes."""

import logging
from pathlib import Path

import pytest
from mmcv.runner import HOOKS, EpochBasedRunner

from helpers.model_configs import build, tiny_lcp_cfg
from lcp.apis.config import load_config
from lcp.errors import LCPError
from lcp.hooks.mode_controller import TrainModeHook, mode_for_epoch
from lcp.models import TRAIN_MODES
from lcp.modes import ALTER, CATCH_UP, CRUX, PLAN_MODES

REPO = Path(__file__).resolve().parents[2]
PLAN = dict(num_epoch=[6, 6, 12], modes=[CATCH_UP, CRUX, ALTER])
CATCH = CATCH_UP
# Written out from the design note: 1-6 catch-up, 7-12 crux, then alternating from catch-up at 13.
PUBLISHED = [CATCH] * 6 + [CRUX] * 6 + [CATCH, CRUX] * 6


def test_published_plan_epoch_by_epoch():
    assert [mode_for_epoch(epoch, **PLAN) for epoch in range(1, 25)] == PUBLISHED
    assert mode_for_epoch(24, **PLAN) == CRUX


def test_alter_phase_restarts_with_catch_up_wherever_it_sits():
    plan = dict(num_epoch=[3, 2], modes=[ALTER, ALTER])
    assert [mode_for_epoch(epoch, **plan) for epoch in range(1, 6)] == [CATCH, CRUX, CATCH, CATCH, CRUX]


@pytest.mark.parametrize(
    "num_epoch,modes,message",
    [
        ([6, 6], ["catch_up_learner"], "same length"),
        ([6, 0], ["catch_up_learner", "crux_learner"], r"num_epoch\[1\] = 0"),
        ([6], ["crux"], r"modes\[0\] = 'crux'"),
    ],
)
def test_bad_plans_are_refused(num_epoch, modes, message):
    with pytest.raises(LCPError, match=message):
        TrainModeHook(num_epoch=num_epoch, modes=modes)


@pytest.mark.parametrize("epoch", [0, 25])
def test_epochs_outside_the_plan_are_refused(epoch):
    with pytest.raises(LCPError, match="outside the plan's epochs 1..24"):
        mode_for_epoch(epoch, **PLAN)


@pytest.fixture(scope="module")
def runner():
    model = build(tiny_lcp_cfg())
    runner = EpochBasedRunner(model, logger=logging.getLogger("lcp-test-modes"), max_epochs=24)
    runner.register_hook(HOOKS.build(dict(type="TrainModeHook", **PLAN)))
    return runner


def modes_from(runner, start_epoch):
    """Call the hooks as EpochBasedRunner.train does, from a run resumed after start_epoch - 1 epochs.

    mmcv's resume sets runner._epoch from the checkpoint's meta['epoch'] (epochs finished).
    """
    modes = []
    for finished in range(start_epoch - 1, runner.max_epochs):
        runner._epoch = finished
        runner.call_hook("before_train_epoch")
        modes.append(runner.model.train_mode)
    return modes


def test_hook_follows_the_plan_and_resuming_anywhere_gives_the_same_modes(runner):
    runner.call_hook("before_run")
    uninterrupted = modes_from(runner, 1)
    assert uninterrupted == PUBLISHED
    for start_epoch in range(2, 25):
        assert modes_from(runner, start_epoch) == PUBLISHED[start_epoch - 1 :], start_epoch


@pytest.mark.parametrize(
    "max_epochs, consequence",
    [
        (30, "epochs 25-30 would have no mode"),
        # a run cut to 6 epochs trained the catch-up learner alone, its detector not at all
        (6, r"the run would end before its first crux_learner epoch \(7\), so it never trains the crux_learner"),
    ],
)
def test_hook_refuses_a_run_its_plan_does_not_fit(max_epochs, consequence):
    model = build(tiny_lcp_cfg())
    runner = EpochBasedRunner(model, logger=logging.getLogger("lcp-test-modes"), max_epochs=max_epochs)
    runner.register_hook(TrainModeHook(**PLAN))
    plan = rf"num_epoch = \[6, 6, 12\] plans 24 epochs but runner.max_epochs = {max_epochs}: {consequence}"
    with pytest.raises(LCPError, match=plan):
        runner.call_hook("before_run")


def test_a_run_that_reaches_both_modes_may_stop_before_its_plan_ends_with_a_warning(caplog):
    model = build(tiny_lcp_cfg())
    runner = EpochBasedRunner(model, logger=logging.getLogger("lcp-test-modes"), max_epochs=8)
    runner.register_hook(TrainModeHook(**PLAN))
    with caplog.at_level(logging.WARNING, logger="lcp-test-modes"):
        runner.call_hook("before_run")
    assert caplog.messages == [
        "TrainModeHook: num_epoch = [6, 6, 12] plans 24 epochs but runner.max_epochs = 8: epochs 9-24 of the plan "
        "are not trained"
    ]


def test_the_detector_and_the_plan_know_the_same_modes():
    assert tuple(TRAIN_MODES) == PLAN_MODES[:2] == (CATCH_UP, CRUX)


def test_the_hook_takes_its_plan_from_the_configs_mode_plan():
    cfg = load_config(REPO / "config" / "mmdet" / "lcp_tiny_demo.py", {"mode_plan.num_epoch": [1, 1, 4]})
    hook = HOOKS.build(next(dict(h) for h in cfg.custom_hooks if h.type == "TrainModeHook"))
    assert [mode_for_epoch(epoch, hook.num_epoch, hook.modes) for epoch in range(1, 7)] == [
        CATCH,
        CRUX,
        CATCH,
        CRUX,
        CATCH,
        CRUX,
    ]
