"""The workflow's first steps through the real one-node SLURM cluster (profiles/slurm)."""

from __future__ import annotations

import re

import pytest
from slurm_cluster import SlurmCluster

from helpers.workflow import REPO, prepare_workdir, snakemake, tiny_demo_config

pytestmark = pytest.mark.slow


def submitted_jobs(output: str) -> dict[str, str]:
    """SLURM job id by rule, from the slurm executor's log lines."""
    return {rule: job_id for job_id, rule in
            re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/", output)}


def test_demo_pretraining_runs_as_slurm_jobs_with_a_gpu_for_the_gpu_rule(slurm_cluster: SlurmCluster, tmp_path):
    config = tiny_demo_config(tmp_path)
    config["scenes"]["demo"]["resources"] = {"default": {"cpus": 1, "mem_mb": 1500},
                                             "pretrain": {"gpus": 1, "mem_mb": 4000, "runtime": 10}}
    prepare_workdir(tmp_path, config)

    result = snakemake(tmp_path, "--profile", str(REPO / "profiles" / "slurm"), "results/demo/pretrain/latest.pth",
                       timeout=400, env=slurm_cluster.env)
    assert result.returncode == 0, result.stdout[-6000:]

    jobs = submitted_jobs(result.stdout)
    assert set(jobs) == {"make_demo_data", "check_data", "pretrain"}
    records = slurm_cluster.wait_finished(list(jobs.values()))
    assert {records[job]["State"] for job in jobs.values()} == {"COMPLETED"}
    assert "gres/gpu=1" in records[jobs["pretrain"]]["AllocTRES"]
    assert "mem=4000M" in records[jobs["pretrain"]]["AllocTRES"]
    for rule in ("make_demo_data", "check_data"):
        assert "gres/gpu" not in records[jobs[rule]]["AllocTRES"]
    assert (tmp_path / "results" / "demo" / "pretrain" / "latest.pth").is_file()

    # the job's MLflow run knows where it ran, and sits under this invocation's parent run
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("lcp/demo").experiment_id])
    pretrain = next(run for run in runs if run.info.run_name == "demo/pretrain/baseline")
    parent = next(run for run in runs if run.data.tags.get("lcp.role") == "invocation")
    assert pretrain.data.tags["slurm.job_id"] == jobs["pretrain"]
    assert pretrain.data.tags["mlflow.parentRunId"] == parent.info.run_id
