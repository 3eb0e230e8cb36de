"""`lcp train` as a job runs it, stdout and stderr into a log file: evaluation progress is whole
lines (no carriage-return bar), --auto-scale-lr scales the lr, and the work dir keeps the
last max_keep_ckpts epoch checkpoints plus the best one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLAIN_TINY = REPO / "config" / "mmdet" / "cascade_rcnn_tiny_demo.py"
LCP_COMMAND = Path(sys.executable).parent / "lcp"


@pytest.fixture(scope="module")
def job(workspace) -> tuple[Path, str]:
    """(work dir, job log) of 3 epochs, evaluated after each, keeping 1 epoch checkpoint."""
    work_dir, log = workspace / "job", workspace / "job.log"
    with log.open("w") as out:
        status = subprocess.run(
            [
                str(LCP_COMMAND),
                "train",
                str(PLAIN_TINY),
                "--work-dir",
                str(work_dir),
                "--auto-scale-lr",
                "--cfg-options",
                f"data_root={workspace / 'demo'}/",
                "data.workers_per_gpu=0",
                "runner.max_epochs=3",
                "evaluation.interval=1",
                "checkpoint_config.max_keep_ckpts=1",
                "auto_scale_lr.base_batch_size=16",
            ],
            check=False,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            timeout=900,
        ).returncode
    assert status == 0, log.read_text()[-3000:]
    return work_dir, log.read_text()


@pytest.mark.slow
def test_evaluation_progress_is_whole_lines_in_a_job_log(job):
    _, log = job
    assert "\r" not in log
    finished = [line for line in log.splitlines() if line.startswith("evaluation: 1/1 img (100%)")]
    assert len(finished) == 3  # one evaluation per epoch, each ending its own line


@pytest.mark.slow
def test_auto_scale_lr_scales_the_lr_to_the_actual_batch(job):
    _, log = job
    # lr 0.02 for a batch of 16 (the job's base_batch_size); the tiny config trains 2 images on one device
    assert "LR has been automatically scaled from 0.02 to 0.0025" in log


@pytest.mark.slow
def test_the_last_epoch_checkpoint_and_the_best_one_are_kept(job):
    work_dir, _ = job
    kept = {path.name for path in work_dir.glob("*.pth")}
    best = {name for name in kept if name.startswith("best_bbox_mAP_epoch_")}
    assert kept - best == {"epoch_3.pth", "latest.pth"} and len(best) == 1
    assert (work_dir / "latest.pth").resolve().name == "epoch_3.pth"


@pytest.mark.slow
def test_an_epoch_is_evaluated_before_its_checkpoint_is_saved(job):
    """mmdet registers EvalHook below CheckpointHook: a run killed while evaluating resumed
    after an epoch that was never evaluated (tests/apis/test_checkpoint_retention.py)."""
    work_dir, _ = job
    log = "\n".join(path.read_text() for path in work_dir.glob("*.log"))
    after_epoch = log.split("after_train_epoch:\n", 1)[1].split(" ----", 1)[0]
    hooks = [line.split(")", 1)[1].strip() for line in after_epoch.splitlines()]
    assert hooks.index("EvalHook") < hooks.index("CheckpointHook"), hooks


@pytest.mark.slow
def test_the_job_log_leaves_the_environment_config_and_initialisation_to_the_work_dirs_log(job):
    """Snakemake shows a failed job's log on the console, once per attempt: 1,077 lines of a
    48-line run were the environment, the config, mmcv's per-parameter initialisation and the
    hook table, which mmdet's log file in the work dir keeps."""
    work_dir, log = job
    (kept,) = work_dir.glob("*.log")
    record = kept.read_text()
    for part in (
        "Environment info:",
        "Config (also in",
        "model = dict(",
        "Name of parameter",
        "Hooks will be executed",
    ):
        assert part in record and part not in log, part
    assert "initialize ResNet with init_cfg" in record and "initialize ResNet" not in log
    assert f"Environment, config and the model's initialisation: in {kept}" in log
    assert "Start running" in log and "Epoch(val) [3]" in log
