"""Running the repository's Snakefile in a scratch folder, with a config derived from config/config.yaml.

The scratch folder gets `config/mmdet` as a link to the repository's model configs, so the
config's relative paths work unchanged, and everything the workflow writes (data/,
results/, .snakemake/) stays inside it.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"
CONFIG = REPO / "config" / "config.yaml"

# The demo scene shrunk so that the whole DAG runs in a minute or two on two CPU cores:
# 24 images of 128 px, one epoch of pretraining and baseline, two of LCP (one per mode),
# one seed, a one-point severity sweep, and one core per job so that two jobs share the machine
# (most of a tiny job is starting Python with torch and mmdet).
TINY_DEMO = {
    "demo": {"num_images": 24, "seed": 0},
    "seeds": [0],
    "robustness": {"sweep": {"beta": [0.08]}},
    "resources": {"default": {"cpus": 1}},
    "pretrain": {
        "config": "config/mmdet/cascade_rcnn_tiny_demo.py",
        "cfg_options": {"runner.max_epochs": 1, "lr_config.step": "[1]", "evaluation.interval": 1},
    },
    "baseline": {
        "config": "config/mmdet/cascade_rcnn_tiny_demo.py",
        "cfg_options": {"runner.max_epochs": 1, "lr_config.step": "[1]", "evaluation.interval": 1},
    },
    "lcp": {
        "config": "config/mmdet/lcp_tiny_demo.py",
        "cfg_options": {"runner.max_epochs": 2, "lr_config.step": "[2]", "evaluation.interval": 2},
    },
}


def repo_config() -> dict:
    """config/config.yaml as plain data: the json round trip unshares YAML aliases, so
    changing one scene's `resources` does not change the scenes that alias it."""
    return json.loads(json.dumps(yaml.safe_load(CONFIG.read_text())))


def tiny_demo_config(workdir: Path) -> dict:
    config = repo_config()
    config["run"] = ["demo"]
    config["scenes"]["demo"].update(copy.deepcopy(TINY_DEMO))
    config["tracking"] = {"enabled": True, "uri": f"sqlite:///{workdir / 'mlflow.db'}"}
    return config


def prepare_workdir(workdir: Path, config: dict) -> Path:
    """Link the model configs into `workdir` and write `config` as its config file."""
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    link = workdir / "config" / "mmdet"
    if not link.exists():
        link.symlink_to(REPO / "config" / "mmdet")
    return write_config(workdir, config)


def with_config(workdir: Path, change) -> Path:
    """Write the repository's config with `change(config)` applied as `workdir`'s config."""
    config = repo_config()
    change(config)
    return prepare_workdir(workdir, config)


def write_config(workdir: Path, config: dict) -> Path:
    path = workdir / "test-config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "test-config.yaml"),
        *args,
    ]


def workflow_env(extra: dict | None = None) -> dict[str, str]:
    """The test process's environment without an MLflow store of the user's (the config names one)."""
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    return {**env, **(extra or {})}


def snakemake(workdir: Path, *args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run snakemake on `workdir`; stdout and stderr together in .stdout."""
    return subprocess.run(
        snakemake_command(workdir, *args),
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        env=workflow_env(env),
    )


def failure_details(workdir: Path, result: subprocess.CompletedProcess) -> str:
    """The end of a failed snakemake's output and of every job log, for an assertion's message."""
    logs = sorted((workdir / "results").rglob("*.log")) if (workdir / "results").exists() else []
    tails = [f"--- {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]) for log in logs]
    return "\n".join(result.stdout.splitlines()[-40:] + tails)


def converted_clear(data: Path, names: list[str]) -> Path:
    """The custom scene's converted set `clear` under `data`, its annotations listing `names`
    (boxes of person only); only the first image is on disk."""
    folder = data / "custom" / "clear"
    folder.mkdir(parents=True)
    (folder / names[0]).write_bytes(b"\xff\xd8")
    (data / "custom" / "annotations").mkdir()
    coco = {
        "images": [{"id": i + 1, "file_name": name, "width": 8, "height": 8} for i, name in enumerate(names)],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}],
    }
    for split in ("train", "test"):
        (data / "custom" / "annotations" / f"clear_{split}.json").write_text(json.dumps(coco))
    return folder


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a (dry) run's output."""
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Job stats:"))
    except StopIteration:
        return {}
    jobs = {}
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


def kill_snakemake_when(workdir: Path, *args: str, ready, timeout: float, waiting_for: str) -> None:
    """Run snakemake with `args` in its own process group and SIGKILL the whole group (as a
    cluster time limit would) once `ready()` is true; fail if it ends first or after `timeout` s."""
    job = subprocess.Popen(
        snakemake_command(workdir, *args),
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=workflow_env(),
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert job.poll() is None, "snakemake ended before the training job could be killed"
            assert time.monotonic() < deadline, f"{waiting_for} within {timeout:g} s"
            time.sleep(0.05)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()


def hold_training_lock(work_dir: Path) -> subprocess.Popen:
    """Another process that holds the work dir's training lock, as a running `lcp train` does."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom lcp.apis.training_lock import training_lock\n"
            f"with training_lock({str(work_dir)!r}):\n    print('locked', flush=True)\n    time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder
