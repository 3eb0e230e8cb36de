"""The jobs and shell commands of a scene's dry run (`snakemake -n -p`), as a text that can be
recorded and compared: a change of the workflow's logic must list the same jobs with the same
commands, and a deliberate change of a command shows in the recording's diff.

    .venv/bin/python tests/helpers/dry_run.py   # record every scene into tests/fixtures/dry_run/
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.workflow import prepare_workdir, repo_config, snakemake  # noqa: E402

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "dry_run"
SCENES = ("demo", "urpc", "foggy_city", "rainy_city", "custom")
JOB = re.compile(r"^(?:local)?rule (\S+):$")


def dry_run_listing(workdir: Path, scene: str) -> str:
    """One line per job, sorted: `rule [wildcards] -> outputs` and its shell command below it."""
    prepare_workdir(workdir, repo_config())
    result = snakemake(workdir, "-n", "-p", "--config", f"run=[{scene}]")
    if result.returncode != 0:
        raise RuntimeError(f"dry run of {scene} failed:\n{result.stdout[-3000:]}")
    jobs, job = [], None
    for line in result.stdout.splitlines():
        if match := JOB.match(line):
            job = {"rule": match.group(1), "output": "", "wildcards": "", "shell": ""}
            jobs.append(job)
        elif job is not None and line.startswith(("    output: ", "    wildcards: ")):
            key, _, value = line.strip().partition(": ")
            job[key] = value
        elif job is not None and line.startswith("Shell command: "):
            job["shell"] = line.removeprefix("Shell command: ")
    entries = sorted(f"{j['rule']} [{j['wildcards']}] -> {j['output']}\n    {j['shell']}" for j in jobs)
    return "\n".join(entries).replace(str(workdir), "{workdir}") + "\n"


if __name__ == "__main__":
    RECORDINGS.mkdir(parents=True, exist_ok=True)
    for name in SCENES:
        with tempfile.TemporaryDirectory() as scratch:
            (RECORDINGS / f"{name}.txt").write_text(dry_run_listing(Path(scratch), name))
        print(f"recorded {RECORDINGS / name}.txt")
