"""The workflow's first steps through the real one-node SLURM cluster (profiles/slurm)."""

from __future__ import annotations

import re

import pytest

from helpers.slurm_cluster import SlurmCluster
from helpers.workflow import REPO, prepare_workdir, snakemake, tiny_demo_config

pytestmark = pytest.mark.slow


def submitted_jobs(output: str) -> dict[str, str]:
    """SLURM job id by rule, from the slurm executor's log lines."""
    return {
        rule: job_id for job_id, rule in re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/", output)
    }


def test_demo_trains_as_slurm_jobs_on_two_gpus_and_on_one(slurm_cluster: SlurmCluster, tmp_path):
    config = tiny_demo_config(tmp_path)
    config["scenes"]["demo"]["resources"] = {
        "default": {"cpus": 1, "mem_mb": 1500},
        "pretrain": {"gpus": 2, "mem_mb": 4000, "runtime": 10},
        "train_baseline": {"gpus": 1, "mem_mb": 3000, "runtime": 10},
    }
    prepare_workdir(tmp_path, config)

    result = snakemake(
        tmp_path,
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "results/demo/baseline/latest.pth",
        timeout=500,
        env=slurm_cluster.env,
    )
    assert result.returncode == 0, result.stdout[-6000:]

    jobs = submitted_jobs(result.stdout)
    assert set(jobs) == {"make_demo_data", "check_data", "pretrain", "train_baseline"}
    records = slurm_cluster.wait_finished(list(jobs.values()))
    assert {records[job]["State"] for job in jobs.values()} == {"COMPLETED"}
    assert "gres/gpu=2" in records[jobs["pretrain"]]["AllocTRES"]
    assert "mem=4000M" in records[jobs["pretrain"]]["AllocTRES"]
    assert "gres/gpu=1" in records[jobs["train_baseline"]]["AllocTRES"]
    for rule in ("make_demo_data", "check_data"):
        assert "gres/gpu" not in records[jobs[rule]]["AllocTRES"]
    assert (tmp_path / "results" / "demo" / "baseline" / "latest.pth").is_file()

    # pretraining ran as one job step of two tasks, one per GPU, in one process group
    steps = slurm_cluster.run(
        "sacct", "--parsable2", "--noheader", "--format", "JobID,NTasks,State", "--jobs", jobs["pretrain"]
    ).stdout.splitlines()
    assert f"{jobs['pretrain']}.0|2|COMPLETED" in steps, steps
    log = (tmp_path / "results" / "demo" / "logs" / "pretrain.log").read_text()
    assert "lcp train: 2 processes: srun --ntasks=2 --kill-on-bad-exit=1 " in log
    assert "Epoch(val) [1]" in log  # evaluated across both ranks

    # each training job is one MLflow run (rank 0's), knows where it ran, and sits under
    # this invocation's parent run
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("lcp/demo").experiment_id])
    parent = next(run for run in runs if run.data.tags.get("lcp.role") == "invocation")
    for rule, name in (("pretrain", "demo/pretrain/baseline"), ("train_baseline", "demo/train/baseline")):
        [run] = [run for run in runs if run.info.run_name == name]
        assert run.data.tags["slurm.job_id"] == jobs[rule]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
