"""A real one-node SLURM cluster for tests: the session fixture `slurm_cluster`.

It installs the Debian packages if needed and starts the cluster with
scripts/slurm/start.sh (2 fake GPUs, 4 CPU slots), yields a `SlurmCluster` whose `env`
subprocesses need (SLURM_CONF, PATH), and stops the cluster at the end if a test session
started it and no other session still uses it.
Hosts that cannot run SLURM (not root, no apt-get) skip these tests, unless
LCP_REQUIRE_SLURM=1 (set by CI), where that is a failure.
"""

from __future__ import annotations

import csv
import fcntl
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import debian

REPO = Path(__file__).resolve().parents[2]
SLURM_SCRIPTS = REPO / "scripts" / "slurm"
GPUS = 2
CPUS = 4
MEM_MB = 8192
FINISHED_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL"}


@dataclass(frozen=True)
class SlurmCluster:
    state_dir: Path
    env: dict[str, str]
    gpus: int
    cpus: int
    partition: str = "main"

    def run(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout, check=check)

    def sbatch(self, *args: str) -> str:
        """Submits a job and returns its id."""
        return self.run("sbatch", "--parsable", *args).stdout.strip().split(";")[0]

    def sacct(self, job_ids: list[str]) -> dict[str, dict[str, str]]:
        """Accounting records of the given jobs (allocations only, no steps), by job id."""
        fields = ["JobID", "JobName", "State", "ExitCode", "AllocTRES", "Account", "Start", "End"]
        out = self.run(
            "sacct",
            "-X",
            "--parsable2",
            "--noheader",
            "--starttime",
            "now-1days",
            "--format",
            ",".join(fields),
            "--jobs",
            ",".join(job_ids),
        ).stdout
        # --parsable2 rows have exactly the asked fields
        rows = (dict(zip(fields, row, strict=True)) for row in csv.reader(out.splitlines(), delimiter="|"))
        return {row["JobID"]: row for row in rows}

    def wait_finished(self, job_ids: list[str], timeout: float = 60) -> dict[str, dict[str, str]]:
        """Waits until accounting shows every job finished; returns their records."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.sacct(job_ids)
            # sacct writes "CANCELLED by 0": the state is the first word.
            if all(records.get(j, {}).get("State", "").split(" ")[0] in FINISHED_STATES for j in job_ids):
                return records
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs {job_ids} not finished after {timeout}s: {records}")
            time.sleep(0.5)


def cannot_run_slurm_reason() -> str | None:
    if os.geteuid() != 0:
        return "starting SLURM daemons needs root"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "SLURM is not installed and there is no apt-get to install it"
    return None


def skip_or_fail(reason: str) -> None:
    debian.skip_or_fail(reason, require="LCP_REQUIRE_SLURM")


def run_script(name: str, *args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SLURM_SCRIPTS / name), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def slurm_cluster():
    reason = cannot_run_slurm_reason()
    if reason:
        skip_or_fail(reason)
    env = dict(os.environ)
    install = run_script("install.sh", env=env, timeout=900)
    if install.returncode != 0:
        skip_or_fail(f"scripts/slurm/install.sh failed: {install.stderr.strip()}")

    state_dir = Path(os.environ.get("LCP_SLURM_DIR") or REPO / ".slurm").absolute()
    state_dir.mkdir(parents=True, exist_ok=True)
    # Several pytest sessions may share the cluster: each holds a shared lock on it while
    # it runs, and the last one to leave stops the cluster if a test session started it.
    with open(state_dir / "tests.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        start = run_script(
            "start.sh", "--gpus", str(GPUS), "--cpus", str(CPUS), "--mem", str(MEM_MB), env=env, timeout=300
        )
        if start.returncode != 0:
            pytest.fail(f"scripts/slurm/start.sh failed:\n{start.stdout}{start.stderr}")
        started_by_tests = state_dir / "started-by-tests"
        if "already running" not in start.stdout:
            started_by_tests.touch()
        # What the state folder's env.sh sets (see scripts/slurm/start.sh).
        env["SLURM_CONF"] = str(state_dir / "etc" / "slurm.conf")
        env["PATH"] = f"{state_dir / 'bin'}{os.pathsep}{env['PATH']}"
        yield SlurmCluster(state_dir=state_dir, env=env, gpus=GPUS, cpus=CPUS)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another session still uses the cluster
        if started_by_tests.exists():
            stop = run_script("stop.sh", env=env, timeout=120)
            assert stop.returncode == 0, f"scripts/slurm/stop.sh failed:\n{stop.stdout}{stop.stderr}"
            started_by_tests.unlink()
