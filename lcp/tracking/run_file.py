"""<work dir>/mlflow-run.json: which MLflow run a work dir's training logs to, so that a resumed
training continues the same run instead of starting another."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lcp.io import read_json, write_json

RUN_FILE = "mlflow-run.json"


def previous_run(work_dir: Path, run_name: str) -> dict[str, Any] | None:
    """The record of the work dir's run named `run_name`; None without one, for a damaged record or
    another run's (then the training starts a new run)."""
    path = work_dir / RUN_FILE
    if not path.is_file():
        return None
    try:
        previous = read_json(path)
    except Exception:  # noqa: BLE001  a damaged record: start a new run
        return None
    if not isinstance(previous, dict) or not previous.get("run_key"):
        return None
    recorded = str(previous.get("run_name"))
    # a run started before run names carried the seed of a scene's several seeds: the same job's
    if recorded != run_name and not re.fullmatch(re.escape(recorded) + r"/seed\d+", run_name):
        return None
    return previous


def save_run_file(work_dir: Path, run) -> None:
    """Record TrackedRun `run` as the work dir's run."""
    write_json(
        work_dir / RUN_FILE,
        {
            "run_key": run.run_key,
            "run_id": run.run_id,
            "run_name": run.run_name,
            "experiment": run.experiment,
            "tracking_uri": run.tracking_uri,
        },
    )
