"""Scheduling overhead of running the workflow through SLURM instead of locally.

Runs a chain of N trivial jobs (each `sleep S`) with `snakemake --profile profiles/local`
and with `snakemake --profile profiles/slurm` on the cluster of scripts/slurm/start.sh,
and prints, per job, the seconds spent beyond the work itself, and the ratio. A chain
shows the latency a step of the DAG pays: each job starts only when snakemake has seen
the previous one finish.

    scripts/slurm/start.sh
    .venv/bin/python bench/bench_slurm_overhead.py --jobs 5 --sleep 1 [--init-seconds 1 2 4]

--init-seconds runs the SLURM side once per value of the profile's
slurm-init-seconds-before-status-checks, to pick the value with the least overhead.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHAIN_SNAKEFILE = """
N = {jobs}
localrules: all

rule all:
    input: f"step{{N}}.txt"

rule step:
    input: lambda wc: [] if int(wc.i) == 1 else [f"step{{int(wc.i) - 1}}.txt"]
    output: "step{{i,[0-9]+}}.txt"
    shell: "sleep {sleep} && echo {{wildcards.i}} > {{output}}"
"""


def slurm_env() -> dict[str, str]:
    """The environment of the cluster's env.sh; exits with a message if the cluster is down."""
    state = Path(os.environ.get("LCP_SLURM_DIR") or REPO / ".slurm")
    env_file = state / "env.sh"
    hint = "start it with scripts/slurm/start.sh"
    if not env_file.is_file():
        sys.exit(f"bench: error: {env_file}: no SLURM cluster was started here; {hint}")
    out = subprocess.run(
        ["bash", "-c", 'source "$1" && env -0', "bash", str(env_file)], capture_output=True, check=True
    ).stdout
    env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    if shutil.which("scontrol", path=env["PATH"]) is None:
        sys.exit("bench: error: SLURM is not installed; run scripts/slurm/install.sh")
    if subprocess.run(["scontrol", "ping"], env=env, capture_output=True, timeout=30).returncode != 0:
        sys.exit(f"bench: error: the SLURM cluster in {state} is not running; {hint}")
    return env


def run_chain(profile: str, jobs: int, sleep: float, env: dict[str, str], extra: list[str]) -> tuple[float, str]:
    """Seconds snakemake took for the whole chain, in a fresh folder, and its output."""
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        Path(tmp, "Snakefile").write_text(CHAIN_SNAKEFILE.format(jobs=jobs, sleep=sleep))
        command = [
            sys.executable,
            "-m",
            "snakemake",
            "--profile",
            str(REPO / "profiles" / profile),
            "--retries",
            "0",
            "all",
            *extra,
        ]
        start = time.monotonic()
        result = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - start
    output = result.stdout + result.stderr
    if result.returncode != 0:
        sys.exit(f"bench: error: snakemake --profile {profile} failed:\n{output[-3000:]}")
    return seconds, output


def slurm_job_times(output: str, env: dict[str, str]) -> tuple[float, float]:
    """Mean seconds a job of the run waited in the queue, and ran, from accounting."""
    match = re.search(r"SLURM run ID: (\S+)", output)
    if not match:
        sys.exit("bench: error: no 'SLURM run ID' in snakemake's output")
    rows = subprocess.run(
        [
            "sacct",
            "-X",
            "--parsable2",
            "--noheader",
            "--name",
            match.group(1),
            "--starttime",
            "now-1days",
            "--format",
            "Submit,Start,End",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    times = [[datetime.fromisoformat(t) for t in row.split("|")] for row in rows]
    queued = sum((start - submit).total_seconds() for submit, start, _ in times) / len(times)
    ran = sum((end - start).total_seconds() for _, start, end in times) / len(times)
    return queued, ran


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5, help="jobs in the chain (default 5)")
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds of work per job (default 1)")
    parser.add_argument(
        "--init-seconds",
        type=int,
        nargs="*",
        default=[],
        help="values of slurm-init-seconds-before-status-checks to try (default: the profile's)",
    )
    args = parser.parse_args()
    if args.jobs < 1 or args.sleep < 0:
        parser.error("--jobs must be >= 1 and --sleep >= 0")
    env = slurm_env()

    work = args.jobs * args.sleep
    local, _ = run_chain("local", args.jobs, args.sleep, env, [])
    local_overhead = (local - work) / args.jobs
    print(
        f"chain of {args.jobs} jobs x sleep {args.sleep:g} s (work {work:g} s); per job: overhead = "
        "(wall - work) / jobs; for SLURM also time queued, job run time beyond the sleep "
        "(snakemake starting inside the job), and the rest (status polling, submission)"
    )
    print(f"{'run':<28} {'wall s':>7} {'overhead s/job':>15} {'ratio':>6} {'queued':>7} {'in job':>7} {'rest':>6}")
    print(f"{'local':<28} {local:7.1f} {local_overhead:15.2f} {1:6.1f}")
    for init in args.init_seconds or [None]:
        extra = [] if init is None else ["--slurm-init-seconds-before-status-checks", str(init)]
        label = "slurm (profile)" if init is None else f"slurm (init-seconds {init})"
        wall, output = run_chain("slurm", args.jobs, args.sleep, env, extra)
        overhead = (wall - work) / args.jobs
        queued, ran = slurm_job_times(output, env)
        rest = overhead - queued - (ran - args.sleep)
        print(
            f"{label:<28} {wall:7.1f} {overhead:15.2f} {overhead / local_overhead:6.1f} "
            f"{queued:7.1f} {ran - args.sleep:7.1f} {rest:6.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
