"""Exact resume (issue 12): a tiny LCP training SIGKILLed in a crux epoch, resumed, SIGKILLed
again in a catch-up epoch and resumed again ends bit-identical, on the CPU, to an
uninterrupted run with the same seed: weights, every iteration's losses and learning rate,
the crux statistics and the evaluation metrics.

The run: lcp_tiny_demo.py's plan (epoch 1 catch-up, 2 crux, 3 catch-up, 4 crux) on the
3-image demo scene, one image per batch (2 iterations per epoch, shuffled), one data-loader
worker (its base seed comes from torch's generator), evaluation after epochs 2 and 4 (its
loader draws from the generator between two epochs).
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv.runner import CheckpointHook, EpochBasedRunner, Hook, OptimizerHook

from lcp.hooks.random_state import RandomStateHook, capture_random_state, restore_random_state

REPO = Path(__file__).resolve().parents[2]
LCP_TINY = REPO / "config" / "mmdet" / "lcp_tiny_demo.py"
LCP_COMMAND = Path(sys.executable).parent / "lcp"
# values of a log line that are measurements of the machine, not of the training
TIMINGS = {"time", "data_time", "memory", "eta"}


def test_restoring_a_captured_state_repeats_every_generators_draws():
    state = capture_random_state()
    first = (random.random(), np.random.permutation(10).tolist(), np.random.normal(), torch.randperm(10).tolist())
    restore_random_state(state)
    again = (random.random(), np.random.permutation(10).tolist(), np.random.normal(), torch.randperm(10).tolist())
    assert again == first
    # and it survives a checkpoint: mmcv's resume loads the meta with torch.load(weights_only=True)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"random-state-{os.getpid()}.pth"
    torch.save({"meta": {"random_state": state}}, path)
    try:
        loaded = torch.load(path, weights_only=True)["meta"]["random_state"]
    finally:
        path.unlink()
    restore_random_state(loaded)
    assert (
        random.random(),
        np.random.permutation(10).tolist(),
        np.random.normal(),
        torch.randperm(10).tolist(),
    ) == first


class NoisyModel(torch.nn.Module):
    """One weight fitted to noisy targets: every step draws from torch's generator."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def train_step(self, data, optimizer):
        loss = ((self.weight - data - torch.rand(1)) ** 2).sum()
        return {"loss": loss, "log_vars": {"loss": float(loss.detach())}, "num_samples": len(data)}


class DrawBetweenEpochs(Hook):
    """Draws from the generators after each epoch's checkpoint, as evaluation's loader does."""

    def after_train_epoch(self, runner) -> None:
        torch.rand(3), np.random.rand(3), random.random()


class KeepMessages(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def train_tiny(work_dir: Path, epochs: int, resume_from: Path | None = None) -> tuple[torch.Tensor, list[str]]:
    """A real mmcv runner, as lcp.apis.train sets it up: (final weight, messages logged)."""
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    model = NoisyModel()
    logger = logging.getLogger(f"tiny-{work_dir.name}")
    kept = KeepMessages()
    logger.addHandler(kept)
    runner = EpochBasedRunner(
        model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        work_dir=str(work_dir),
        logger=logger,
        meta={},
        max_epochs=epochs,
    )
    runner.register_optimizer_hook(OptimizerHook())
    runner.register_hook(CheckpointHook(interval=1))
    runner.register_hook(DrawBetweenEpochs(), priority="LOW")
    runner.register_hook(RandomStateHook(), priority="HIGHEST")
    if resume_from is not None:
        runner.resume(str(resume_from))
    loader = torch.utils.data.DataLoader(torch.arange(6.0), batch_size=2, shuffle=True)
    runner.run([loader], [("train", 1)])
    logger.removeHandler(kept)
    return model.weight.detach().clone(), kept.messages


def test_a_resumed_runner_draws_what_an_uninterrupted_one_draws_also_after_draws_between_epochs(tmp_path):
    whole, _ = train_tiny(tmp_path / "whole", 3)
    for epoch in (1, 2):
        resumed, warnings = train_tiny(tmp_path / f"resumed{epoch}", 3, tmp_path / "whole" / f"epoch_{epoch}.pth")
        assert torch.equal(resumed, whole), f"resumed from epoch {epoch}"
        assert not any("RandomStateHook" in line for line in warnings)


def test_resuming_a_checkpoint_without_random_state_says_it_is_not_exact(tmp_path):
    train_tiny(tmp_path / "whole", 1)
    checkpoint = torch.load(tmp_path / "whole" / "epoch_1.pth", weights_only=True)
    del checkpoint["meta"]["random_state"]
    torch.save(checkpoint, tmp_path / "old.pth")
    _, warnings = train_tiny(tmp_path / "resumed", 2, tmp_path / "old.pth")
    assert any("the checkpoint resumed at epoch 1 holds no random state" in line for line in warnings)


def test_resuming_on_another_cpu_thread_count_says_it_is_not_exact(tmp_path):
    """A CPU training's sums depend on the thread count: a retry given other cpus ended otherwise, silently."""
    train_tiny(tmp_path / "whole", 1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        _, warnings = train_tiny(tmp_path / "resumed", 2, tmp_path / "whole" / "epoch_1.pth")
    finally:
        torch.set_num_threads(threads)
    expected = f"was trained on {threads} CPU threads and this run has {threads + 1}"
    assert any(expected in line and f"OMP_NUM_THREADS={threads}" in line for line in warnings), warnings
    _, warnings = train_tiny(tmp_path / "again", 2, tmp_path / "whole" / "epoch_1.pth")
    assert not any("RandomStateHook" in line for line in warnings)


@pytest.fixture(scope="module")
def config(workspace) -> Path:
    """The tiny LCP config from random weights (no pretrained detector needed to compare runs)."""
    path = workspace / "lcp_tiny_resume.py"
    path.write_text(f"_base_ = {str(LCP_TINY)!r}\nload_from = None\n")
    return path


def train_command(workspace: Path, config: Path, work_dir: Path, *extra: str) -> list[str]:
    return [
        str(LCP_COMMAND),
        "train",
        str(config),
        "--work-dir",
        str(work_dir),
        *extra,
        "--cfg-options",
        f"data_root={workspace / 'demo'}/",
        "data.samples_per_gpu=1",
        "data.workers_per_gpu=1",
        "log_config.interval=1",
        "evaluation.interval=2",
        "runner.max_epochs=4",
    ]


def start(command: list[str], log: Path) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )


def epoch_started(work_dir: Path, epoch: int) -> bool:
    line = f"TrainModeHook: epoch {epoch} trains the"
    return any(line in log.read_text() for log in work_dir.glob("*.log"))


def kill_in_epoch(command: list[str], work_dir: Path, epoch: int, log: Path) -> None:
    """Run `command` and SIGKILL it (with its data-loader worker) once `epoch` has started training."""
    process = start(command, log)
    deadline = time.monotonic() + 600
    while process.poll() is None and not epoch_started(work_dir, epoch):
        assert time.monotonic() < deadline, f"epoch {epoch} never started; see {log}"
        time.sleep(0.05)
    assert process.poll() is None, f"the run ended before it could be killed in epoch {epoch}; see {log}"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (work_dir / f"epoch_{epoch}.pth").exists(), "killed too late: the epoch was saved"


def finish(process: subprocess.Popen, log: Path) -> None:
    assert process.wait(timeout=900) == 0, log.read_text()[-3000:]


def log_lines(work_dir: Path) -> dict[tuple, dict]:
    """(mode, epoch, iter) -> the json log's values without timings; a later run's line for the
    same iteration (an epoch retrained after a kill) replaces the killed run's."""
    lines = {}
    for path in sorted(work_dir.glob("*.log.json")):
        for text in path.read_text().splitlines():
            entry = json.loads(text)
            if "mode" in entry:
                lines[entry["mode"], entry["epoch"], entry["iter"]] = {
                    key: value for key, value in entry.items() if key not in TIMINGS
                }
    return lines


def crux_lines(work_dir: Path) -> dict[int, str]:
    """Epoch -> CruxHealthHook's line of it in the text logs (a later run's replaces a killed one's)."""
    lines = {}
    for path in sorted(work_dir.glob("*.log")):
        for text in path.read_text().splitlines():
            if "CruxHealthHook: epoch " in text:
                statistics = text.split("CruxHealthHook: epoch ", 1)[1]
                lines[int(statistics.split(":")[0])] = statistics
    return lines


@pytest.fixture(scope="module")
def runs(workspace, config) -> tuple[Path, Path]:
    """(uninterrupted work dir, killed-and-resumed work dir), trained side by side."""
    whole, resumed = workspace / "whole", workspace / "resumed"
    logs = workspace / "resume-logs"
    logs.mkdir()
    uninterrupted = start(train_command(workspace, config, whole), logs / "whole.txt")
    kill_in_epoch(train_command(workspace, config, resumed), resumed, 2, logs / "resumed.txt")  # crux
    kill_in_epoch(
        train_command(workspace, config, resumed, "--auto-resume"), resumed, 3, logs / "resumed.txt"
    )  # catch-up
    finish(
        start(train_command(workspace, config, resumed, "--auto-resume"), logs / "resumed.txt"), logs / "resumed.txt"
    )
    finish(uninterrupted, logs / "whole.txt")
    return whole, resumed


@pytest.mark.slow
def test_killed_in_both_modes_and_resumed_ends_with_the_same_weights(runs):
    whole, resumed = runs
    expected = torch.load(whole / "epoch_4.pth", map_location="cpu", weights_only=False)["state_dict"]
    got = torch.load(resumed / "epoch_4.pth", map_location="cpu", weights_only=False)["state_dict"]
    assert got.keys() == expected.keys()
    differing = {
        name: float((got[name].double() - expected[name].double()).abs().max())
        for name in expected
        if not torch.equal(got[name], expected[name])
    }
    assert not differing, f"{len(differing)} of {len(expected)} tensors differ, e.g. {list(differing.items())[:3]}"


@pytest.mark.slow
def test_killed_in_both_modes_and_resumed_logs_the_same_losses_crux_statistics_and_metrics(runs):
    whole, resumed = runs
    expected, got = log_lines(whole), log_lines(resumed)
    # a val line per evaluation (epochs 2 and 4): the metrics, with that epoch's crux statistics
    assert {key[:2] for key in expected} == {("train", e) for e in (1, 2, 3, 4)} | {("val", 2), ("val", 4)}
    assert all("bbox_mAP" in expected["val", e, 1] and "crux/mask_mean" in expected["val", e, 1] for e in (2, 4))
    differing = [key for key in expected if got.get(key) != expected[key]]
    assert not differing, "log lines differ: " + "; ".join(
        f"{key}: {got.get(key)} != {expected[key]}" for key in differing[:3]
    )
    assert got.keys() == expected.keys()
    # every epoch's crux statistics, in the text log (the killed runs' lines of an epoch retrained after)
    assert crux_lines(resumed) == crux_lines(whole) and sorted(crux_lines(whole)) == [1, 2, 3, 4]


@pytest.mark.slow
def test_a_run_with_mmdets_ema_hook_killed_and_resumed_ends_with_the_same_weights(workspace, tmp_path):
    """mmdet's EMA hook registers its ema_* buffers (the raw weights, after the epoch's swap) when
    the run starts, after the resume: they were dropped as unexpected keys and the resumed run
    went on from the averaged weights (170 of the 384 tensors differed at the end)."""
    config = tmp_path / "lcp_tiny_ema.py"
    config.write_text(
        f"_base_ = {str(LCP_TINY)!r}\nload_from = None\ncustom_hooks = [\n"
        "    dict(type='NumClassCheckHook'),\n"
        "    dict(type='TrainModeHook', num_epoch='${mode_plan.num_epoch}', modes='${mode_plan.modes}'),\n"
        "    dict(type='DFPairingHook'),\n"
        "    dict(type='CruxHealthHook'),\n"
        "    dict(type='ExpMomentumEMAHook', momentum=0.01, priority=49),\n"
        "]\n"
    )
    whole, resumed, log = tmp_path / "whole", tmp_path / "resumed", tmp_path / "log.txt"
    uninterrupted = start(train_command(workspace, config, whole), tmp_path / "whole.txt")
    kill_in_epoch(train_command(workspace, config, resumed), resumed, 3, log)
    finish(start(train_command(workspace, config, resumed, "--auto-resume"), log), log)
    finish(uninterrupted, tmp_path / "whole.txt")
    expected = torch.load(whole / "epoch_4.pth", map_location="cpu", weights_only=False)["state_dict"]
    got = torch.load(resumed / "epoch_4.pth", map_location="cpu", weights_only=False)["state_dict"]
    assert got.keys() == expected.keys() and "ema_backbone_conv1_weight" in got
    differing = [name for name in expected if not torch.equal(got[name], expected[name])]
    assert not differing, f"{len(differing)} of {len(expected)} tensors differ, e.g. {differing[:3]}"
