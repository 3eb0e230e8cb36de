"""The one-node SLURM cluster (scripts/slurm/) and the Snakemake profiles (profiles/):
real daemons, real sbatch/sacct, real snakemake runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers.slurm_cluster import CPUS, GPUS, MEM_MB, REPO, SlurmCluster, run_script

pytestmark = pytest.mark.slow

# Three rules, one of them asking for a GPU; every job writes where it ran.
WORKFLOW = r"""
localrules: all

rule all:
    input: "joined.txt"

rule cpu:
    output: "cpu.txt"
    shell: "echo job=${{SLURM_JOB_ID:-none}} gpus=${{CUDA_VISIBLE_DEVICES:-none}} > {output}"

rule gpu:
    output: "gpu.txt"
    resources: gpu=1
    shell: "echo job=${{SLURM_JOB_ID:-none}} gpus=${{CUDA_VISIBLE_DEVICES:-none}} > {output}"

rule join:
    input: "cpu.txt", "gpu.txt"
    output: "joined.txt"
    shell: "cat {input} > {output} && echo job=${{SLURM_JOB_ID:-none}} gpus=${{CUDA_VISIBLE_DEVICES:-none}} >> {output}"
"""

# `flaky` fails on its first attempt only; `broken` always fails.
FAILING_WORKFLOW = r"""
rule flaky:
    output: "flaky.txt"
    resources: attempt=lambda wildcards, attempt: attempt
    shell: "test {resources.attempt} -ge 2 && echo attempt={resources.attempt} > {output}"

rule broken:
    output: "broken.txt"
    shell: "exit 3"
"""


def run_snakemake(folder: Path, profile: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--profile", str(REPO / "profiles" / profile), *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=150)


def where_it_ran(line: str) -> dict[str, str]:
    """{'job': ..., 'gpus': ...} from a line `job=ID gpus=DEVICES` written by a job."""
    return dict(field.split("=", 1) for field in line.split())


def is_running(pid: str) -> bool:
    """True while the process exists and is not a zombie (exited, not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def submitted_jobs(snakemake_output: str) -> dict[str, list[str]]:
    """SLURM job ids by rule, in submission order, from the slurm executor's log lines."""
    jobs: dict[str, list[str]] = {}
    for job_id, rule in re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/", snakemake_output):
        jobs.setdefault(rule, []).append(job_id)
    return jobs


def test_start_is_idempotent_and_stop_stops_only_its_own_cluster(slurm_cluster: SlurmCluster):
    same = run_script(
        "start.sh", "--gpus", str(GPUS), "--cpus", str(CPUS), "--mem", str(MEM_MB), env=slurm_cluster.env, timeout=60
    )
    assert same.returncode == 0, same.stderr
    assert "already running" in same.stdout

    other = run_script("start.sh", "--gpus", "1", env=slurm_cluster.env, timeout=60)
    assert other.returncode == 1
    assert "already running" in other.stderr and "stop it first" in other.stderr

    # A second cluster in its own state folder (munge and mysql must be able to enter it).
    folder = Path(tempfile.mkdtemp(prefix="lcp-slurm-test-"))
    folder.chmod(0o755)
    env = {**slurm_cluster.env, "LCP_SLURM_DIR": str(folder / "state")}

    def script(name: str, *args: str) -> subprocess.CompletedProcess:
        return run_script(name, *args, env=env, timeout=120)

    try:
        first = script("start.sh", "--cpus", "1", "--mem", "512")
        assert first.returncode == 0, first.stdout + first.stderr
        assert first.stdout.count("started ") == 5
        again = script("start.sh", "--cpus", "1", "--mem", "512")
        assert again.returncode == 0 and "already running" in again.stdout

        stop = script("stop.sh")
        assert stop.returncode == 0, stop.stderr
        stopped = re.findall(r"stopped (\w+) \(pid (\d+)\)", stop.stdout)
        assert sorted(name for name, _ in stopped) == ["mariadbd", "munged", "slurmctld", "slurmd", "slurmdbd"]
        assert not [pid for _, pid in stopped if is_running(pid)]
        assert "nothing running" in script("stop.sh").stdout
        # The session's cluster was left alone.
        assert slurm_cluster.run("sinfo", "-h", "-o", "%T").stdout.strip() in {"idle", "mixed", "allocated"}
    finally:
        script("stop.sh")
        shutil.rmtree(folder, ignore_errors=True)


def test_batch_job_is_accounted(slurm_cluster: SlurmCluster, tmp_path: Path):
    out = tmp_path / "hello.out"
    job = slurm_cluster.sbatch("--output", str(out), "--wrap", "echo hello from $SLURM_JOB_ID")
    record = slurm_cluster.wait_finished([job])[job]
    assert (record["State"], record["ExitCode"], record["Account"]) == ("COMPLETED", "0:0", "lcp")
    assert out.read_text().strip() == f"hello from {job}"


def test_failing_batch_job_is_recorded_failed(slurm_cluster: SlurmCluster):
    job = slurm_cluster.sbatch("--output", "/dev/null", "--wrap", "exit 3")
    record = slurm_cluster.wait_finished([job])[job]
    assert (record["State"], record["ExitCode"]) == ("FAILED", "3:0")


def test_gpu_jobs_get_their_own_device_and_a_third_waits(slurm_cluster: SlurmCluster, tmp_path: Path):
    assert slurm_cluster.gpus == 2
    request = {"a": "--gres=gpu:1", "b": "--gpus=1", "c": "--gpus=1"}
    jobs = {
        name: slurm_cluster.sbatch(
            flag, "--output", str(tmp_path / f"{name}.out"), "--wrap", "echo $CUDA_VISIBLE_DEVICES; sleep 4"
        )
        for name, flag in request.items()
    }
    ids = list(jobs.values())

    deadline = time.monotonic() + 60
    while True:
        queue = slurm_cluster.run("squeue", "-h", "-j", ",".join(ids), "-o", "%i %T %r").stdout.split("\n")
        states = sorted(line.split(" ", 1)[1] for line in queue if line.strip())
        if states == ["PENDING Resources", "RUNNING None", "RUNNING None"]:
            break
        assert time.monotonic() < deadline, f"never two GPU jobs running and one waiting: {queue}"
        time.sleep(0.2)
    # The waiting job waits for a GPU, not for CPUs: some are free (sinfo %C: alloc/idle/other/total).
    assert int(slurm_cluster.run("sinfo", "-h", "-n", "localhost", "-o", "%C").stdout.split("/")[1]) > 0

    records = slurm_cluster.wait_finished(ids)
    assert {r["State"] for r in records.values()} == {"COMPLETED"}
    assert all("gres/gpu=1" in records[j]["AllocTRES"] for j in ids)
    devices = {name: (tmp_path / f"{name}.out").read_text().strip() for name in jobs}
    assert set(devices.values()) <= {"0", "1"}
    first_two = sorted(ids, key=lambda j: records[j]["Start"])[:2]
    assert {devices[name] for name, j in jobs.items() if j in first_two} == {"0", "1"}
    last = next(j for j in ids if j not in first_two)
    assert records[last]["Start"] >= min(records[j]["End"] for j in first_two)


def test_workflow_runs_through_slurm_profile(slurm_cluster: SlurmCluster, tmp_path: Path):
    (tmp_path / "Snakefile").write_text(WORKFLOW)
    result = run_snakemake(tmp_path, "slurm", slurm_cluster.env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    ran = {
        name: where_it_ran((tmp_path / f"{name}.txt").read_text().splitlines()[-1]) for name in ("cpu", "gpu", "joined")
    }
    job_ids = [r["job"] for r in ran.values()]
    assert all(j.isdigit() for j in job_ids) and len(set(job_ids)) == 3
    assert submitted_jobs(result.stdout + result.stderr) == {
        "cpu": [ran["cpu"]["job"]],
        "gpu": [ran["gpu"]["job"]],
        "join": [ran["joined"]["job"]],
    }

    records = slurm_cluster.sacct(job_ids)
    assert {records[j]["State"] for j in job_ids} == {"COMPLETED"}
    assert "gres/gpu=1" in records[ran["gpu"]["job"]]["AllocTRES"]
    assert ran["gpu"]["gpus"] in {"0", "1"}
    for name in ("cpu", "joined"):
        assert "gres/gpu" not in records[ran[name]["job"]]["AllocTRES"]
        assert ran[name]["gpus"] == "none"


def test_workflow_runs_through_local_profile(tmp_path: Path):
    (tmp_path / "Snakefile").write_text(WORKFLOW)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    result = run_snakemake(tmp_path, "local", env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    lines = (tmp_path / "joined.txt").read_text().splitlines()
    assert [where_it_ran(line)["job"] for line in lines] == ["none"] * 3


def test_failed_job_is_reported_and_a_flaky_one_retried(slurm_cluster: SlurmCluster, tmp_path: Path):
    (tmp_path / "Snakefile").write_text(FAILING_WORKFLOW)
    result = run_snakemake(
        tmp_path, "slurm", slurm_cluster.env, "--retries", "1", "--keep-going", "flaky.txt", "broken.txt"
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (tmp_path / "flaky.txt").read_text().strip() == "attempt=2"
    assert not (tmp_path / "broken.txt").exists()

    jobs = submitted_jobs(output)
    assert len(jobs["flaky"]) == 2 and len(jobs["broken"]) == 2
    for job_id in jobs["broken"] + jobs["flaky"][:1]:
        assert f"SLURM-job '{job_id}' failed, SLURM status is: 'FAILED'" in output
    records = slurm_cluster.sacct(jobs["flaky"] + jobs["broken"])
    assert [records[j]["State"] for j in jobs["flaky"]] == ["FAILED", "COMPLETED"]
    assert [records[j]["State"] for j in jobs["broken"]] == ["FAILED", "FAILED"]


def test_a_state_folder_with_whitespace_is_refused_before_anything_starts(tmp_path: Path):
    """A checkout under a path with a space made MariaDB's set-up fail half-way (munged left
    running) and env.sh unsourceable."""
    state = tmp_path / "my cluster" / "state"
    result = run_script("start.sh", env={**os.environ, "LCP_SLURM_DIR": str(state)}, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"slurm start: error: state folder path '{state}' has whitespace, which slurm.conf cannot hold; "
        "set LCP_SLURM_DIR to a path without"
    ]
    assert not state.exists()
