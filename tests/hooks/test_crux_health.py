"""Crux-learner health: mask statistics and the collapse verdict on crafted masks, and
CruxHealthHook in tiny real training runs: a crux learner frozen at its initialisation is
reported collapsed (WARNING), a live one is not."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import torch
from mmcv.runner import HOOKS, EpochBasedRunner, Hook, build_optimizer

from helpers.crux_health import make_live
from helpers.model_configs import batch, build, tiny_lcp_cfg
from lcp.errors import LCPError
from lcp.hooks.crux_health import CruxHealthHook, MaskStatistics, collapse_verdict, health_record, mask_statistics

# ---- statistics ----------------------------------------------------------------------------


def test_statistics_of_a_mask_stuck_near_zero():
    torch.manual_seed(0)
    masks = 0.009 + 0.0003 * torch.randn(2, 1, 40, 48)
    stats = mask_statistics(masks)
    assert stats["mask_mean"] == pytest.approx(0.009, abs=2e-5)
    assert stats["mask_std"] == pytest.approx(0.0003, rel=0.05)
    assert stats["mask_frac_above_half"] == 0.0
    assert stats["mask_spatial_std"] == pytest.approx(0.0003, rel=0.05)


def test_statistics_leave_the_padding_out_and_separate_spatial_from_overall_spread():
    masks = torch.full((2, 1, 8, 8), 0.7)  # 0.7 is padding where img_shape says so
    masks[0, 0, :6, :4] = 1.0  # image 0: 6x8 valid, left half kept, right half faded
    masks[0, 0, :6, 4:] = 0.0
    masks[1, 0] = 0.25  # image 1: 8x8, flat
    stats = mask_statistics(masks, img_shapes=[(6, 8, 3), (8, 8, 3)])
    valid = np.concatenate([masks[0, 0, :6].numpy().ravel(), masks[1, 0].numpy().ravel()])
    assert stats["mask_mean"] == pytest.approx(valid.mean())
    assert stats["mask_std"] == pytest.approx(valid.std())
    assert stats["mask_frac_above_half"] == pytest.approx(24 / 112)
    # image 0 varies by 0.5 around its mean, image 1 not at all: the mean of the two
    assert stats["mask_spatial_std"] == pytest.approx(0.25)
    # without the shapes the padding counts, and the numbers change
    assert mask_statistics(masks)["mask_mean"] != pytest.approx(valid.mean())


def test_statistics_accumulated_over_batches_equal_those_of_all_images_at_once():
    torch.manual_seed(1)
    masks = torch.rand(5, 1, 16, 20) ** 3
    shapes = [(16, 20), (10, 20), (16, 12), (7, 9), (16, 20)]
    running = MaskStatistics()
    running.update(masks[:2], shapes[:2])
    running.update(masks[2:], shapes[2:])
    assert running.summary() == pytest.approx(mask_statistics(masks, shapes))
    assert MaskStatistics().summary() is None


# ---- verdict ---------------------------------------------------------------------------------

STUCK_AT_ZERO = dict(mask_mean=0.009, mask_std=0.0003, mask_frac_above_half=0.0, mask_spatial_std=0.0003)


def test_a_mask_stuck_at_its_initialisation_is_collapsed_and_the_sentence_names_the_numbers():
    verdict = collapse_verdict(STUCK_AT_ZERO)
    assert verdict.startswith("crux learner collapsed: the mask is 0.009 on every pixel (std 0.0003)")
    assert "marks no regions" in verdict
    assert health_record(STUCK_AT_ZERO) == {**STUCK_AT_ZERO, "collapsed": True, "verdict": verdict}


@pytest.mark.parametrize(
    "stats,words",
    [
        (
            dict(mask_mean=0.995, mask_std=0.002, mask_frac_above_half=1.0, mask_spatial_std=0.002),
            "0.995 on every pixel (std 0.002) and no pixel is below 0.5",
        ),
        (
            dict(mask_mean=0.012, mask_std=0.03, mask_frac_above_half=0.0, mask_spatial_std=0.03),
            "0.012 on average (std 0.03) and no pixel is above 0.5",
        ),
        (
            dict(mask_mean=0.43, mask_std=0.05, mask_frac_above_half=0.0, mask_spatial_std=0.004),
            "the mask is flat, 0.43 on every pixel (varying by 0.004 within an image, under 0.02)",
        ),
        (
            dict(mask_mean=0.513, mask_std=0.009, mask_frac_above_half=0.98, mask_spatial_std=0.009),  # centred start
            "the mask is flat, 0.513 on every pixel (varying by 0.009 within an image, under 0.02)",
        ),
        (
            dict(mask_mean=0.027, mask_std=0.0006, mask_frac_above_half=0.0, mask_spatial_std=0.0006),  # init, seed 1
            "the mask is flat, 0.027 on every pixel",
        ),
        (  # diverged: NaN failed every comparison and the verdict was "alive"
            dict(mask_mean=math.nan, mask_std=math.nan, mask_frac_above_half=0.0, mask_spatial_std=math.nan),
            "the mask is not finite (mean nan, std nan); the crux learner diverged",
        ),
    ],
)
def test_stuck_at_one_stuck_near_zero_and_flat_masks_are_collapsed(stats, words):
    verdict = collapse_verdict(stats)
    assert verdict is not None and verdict.startswith("crux learner collapsed: ") and words in verdict


@pytest.mark.parametrize(
    "stats",
    [
        dict(mask_mean=0.5, mask_std=0.5, mask_frac_above_half=0.5, mask_spatial_std=0.5),  # half kept
        dict(mask_mean=0.015, mask_std=0.1, mask_frac_above_half=0.01, mask_spatial_std=0.1),  # marks 1%
        dict(mask_mean=0.985, mask_std=0.1, mask_frac_above_half=0.99, mask_spatial_std=0.1),  # fades 1%
        dict(mask_mean=0.43, mask_std=0.05, mask_frac_above_half=0.0, mask_spatial_std=0.021),  # soft, varied
    ],
)
def test_masks_that_mark_regions_are_alive(stats):
    assert collapse_verdict(stats) is None
    assert health_record(stats)["collapsed"] is False


def test_bad_interval_is_refused():
    with pytest.raises(LCPError, match="interval = 0"):
        CruxHealthHook(interval=0)


# ---- the hook in a real runner ----------------------------------------------------------------


def run_tiny(work_dir, model, crux_lr_mult=1.0, epochs=2, iters=1, interval=1):
    """`epochs` epochs of `iters` iterations on batches of seed 0, 1, ... (epoch 1 catch-up, then crux), with
    mmcv's OptimizerHook and TextLoggerHook, as mmdet's train_detector registers them."""
    optimizer = build_optimizer(
        model,
        dict(
            type="SGD",
            lr=0.01,
            momentum=0.9,
            weight_decay=1e-4,
            paramwise_cfg=dict(custom_keys={"crux_learner": dict(lr_mult=crux_lr_mult, decay_mult=crux_lr_mult)}),
        ),
    )
    logger = logging.getLogger(f"lcp-test-crux-health-{work_dir.name}")
    logger.setLevel(logging.INFO)
    runner = EpochBasedRunner(model, optimizer=optimizer, work_dir=str(work_dir), logger=logger, max_epochs=epochs)
    runner.register_training_hooks(
        lr_config=None,
        optimizer_config=dict(grad_clip=None),
        log_config=dict(interval=1, hooks=[dict(type="TextLoggerHook")]),
    )
    runner.register_hook(
        HOOKS.build(dict(type="TrainModeHook", num_epoch=[1, epochs - 1], modes=["catch_up_learner", "crux_learner"]))
    )
    health = HOOKS.build(dict(type="CruxHealthHook", interval=interval))
    runner.register_hook(health)
    runner.register_hook(EvaluatesLastEpoch(), priority="LOW")  # where mmdet's train_detector puts EvalHook
    runner.run([[batch(seed=seed) for seed in range(iters)]], [("train", 1)])
    return runner, health


class EvaluatesLastEpoch(Hook):
    """What mmdet's EvalHook does to the log buffer, in the last epoch only (evaluation.interval)."""

    def after_train_epoch(self, runner):
        if self.is_last_epoch(runner):
            runner.log_buffer.output["bbox_mAP"] = 0.5
            runner.log_buffer.ready = True


def epoch_lines(work_dir):
    """The json log's entries with crux statistics; every 'val' entry must be an evaluation: mmdet's
    analyze_logs takes each one for an evaluation epoch and fails on one without bbox_mAP."""
    (log,) = work_dir.glob("*.log.json")
    entries = list(map(json.loads, log.read_text().splitlines()))
    assert all("bbox_mAP" in entry for entry in entries if entry.get("mode") == "val")
    return [entry for entry in entries if "crux/mask_mean" in entry]


def test_a_crux_learner_that_cannot_learn_is_reported_collapsed(tmp_path, caplog):
    torch.manual_seed(0)
    model = build(tiny_lcp_cfg())
    before = {name: p.detach().clone() for name, p in model.crux_learner.named_parameters()}
    with caplog.at_level(logging.INFO):
        runner, health = run_tiny(tmp_path, model, crux_lr_mult=0.0)
    for name, param in model.crux_learner.named_parameters():
        assert torch.equal(param, before[name]), name  # lr 0: still its initialisation
    # it got gradients in the crux epoch (so the norm is measured) but could not move
    assert "grad_norm" not in health.epochs[1] and health.epochs[2]["grad_norm"] > 0
    assert health.epochs[2]["mask_mean"] < 0.02 and health.epochs[2]["mask_spatial_std"] < 0.02
    assert health.verdict.startswith("crux learner collapsed: the mask is 0.0")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"CruxHealthHook: {health.verdict}"]
    (line,) = epoch_lines(tmp_path)  # the evaluated epoch's entry; each epoch's are in the text log
    assert line["epoch"] == 2 and line["bbox_mAP"] == 0.5
    assert line["crux/mask_mean"] == pytest.approx(health.epochs[2]["mask_mean"], abs=1e-4)
    assert line["crux/grad_norm"] > 0
    infos = [r.getMessage() for r in caplog.records if r.getMessage().startswith("CruxHealthHook: epoch")]
    assert [info.split(":")[1] for info in infos] == [" epoch 1", " epoch 2"]
    assert "grad_norm" in infos[1] and "grad_norm" not in infos[0]


class MaskOnly(torch.nn.Module):
    """A crux learner that shows only forward and mask (no h_evaluation to take the heat map from)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, img):
        return self.inner(img)

    def mask(self, img):
        return self.inner.mask(img)


@pytest.mark.parametrize("masks_from", ["training pass", "second pass"])
def test_a_live_crux_learner_gives_no_warning(tmp_path, caplog, masks_from):
    torch.manual_seed(0)
    model = build(tiny_lcp_cfg())
    make_live(model.crux_learner, batch(seed=0)["img"])
    with torch.no_grad():
        before = mask_statistics(model.crux_learner.mask(batch(seed=0)["img"]))
        both = mask_statistics(model.crux_learner.mask(torch.cat([batch(seed=0)["img"], batch(seed=1)["img"]])))
    rows = []  # images through the crux learner
    model.crux_learner.h_evaluation.register_forward_hook(lambda module, inputs, output: rows.append(len(output)))
    if masks_from == "second pass":
        model.crux_learner = MaskOnly(model.crux_learner)
    with caplog.at_level(logging.INFO):
        runner, health = run_tiny(tmp_path, model, epochs=2, iters=2, interval=2)
    # catch-up: img and img_df, crux: img; 2 iterations each; a second pass: 2 more images per epoch
    assert sum(rows) == 2 * (2 + 2) + 2 * 2 + (0 if masks_from == "training pass" else 2 * 2)
    assert health.verdict is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("crux learner alive" in r.getMessage() for r in caplog.records)
    stats = health.epochs[2]
    assert "grad_norm" not in health.epochs[1]
    assert stats["mask_spatial_std"] > 0.05 and 0.02 < stats["mask_mean"] < 0.98 and stats["grad_norm"] > 0
    # epoch 1 (catch-up) leaves the crux learner as it was, and interval 2 measures only the first of the
    # epoch's 2 iterations: the statistics of the masks of that one batch (seed 0, not seed 1)
    assert health.epochs[1] == pytest.approx(before)
    assert health.epochs[1]["mask_mean"] != pytest.approx(both["mask_mean"])


class NoCrux(torch.nn.Linear):
    def train_step(self, data, optimizer=None):
        raise AssertionError("not reached")


def test_the_hook_needs_a_model_with_a_crux_learner(tmp_path):
    runner = EpochBasedRunner(
        NoCrux(1, 1), logger=logging.getLogger("lcp-test-no-crux"), max_epochs=1, work_dir=str(tmp_path)
    )
    runner.register_hook(CruxHealthHook())
    with pytest.raises(LCPError, match="the model NoCrux has no crux learner; use it with LCPDetector"):
        runner.call_hook("before_run")


def _reduce_on_rank(rank, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        statistics = MaskStatistics()
        if rank == 0:  # rank 1 measured nothing (it still takes part in the reduction)
            statistics.update(torch.linspace(0, 1, 64).reshape(1, 1, 8, 8))
            statistics.update(torch.full((1, 1, 8, 8), 0.25))
        statistics.all_reduce()
        torch.save(statistics.summary(), f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_statistics_of_a_distributed_run_combine_every_rank(tmp_path):
    import torch.multiprocessing as mp

    mp.start_processes(_reduce_on_rank, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, start_method="fork")
    expected = mask_statistics(
        torch.cat([torch.linspace(0, 1, 64).reshape(1, 1, 8, 8), torch.full((1, 1, 8, 8), 0.25)])
    )
    for rank in (0, 1):
        assert torch.load(tmp_path / f"rank{rank}.pt") == pytest.approx(expected)
