"""<work dir>/mlflow-run.json: which MLflow run a work dir's training logs to, so that a resumed
training continues the same run instead of starting another, and the tag saying why it stopped,
which `lcp train --gpus N` rewrites when another process than the one that logs failed first."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from lcp.errors import LCPError
from lcp.io import read_json, write_json
from lcp.tracking.client import clip, now_ms
from lcp.tracking.journal import Journal, journal_path
from lcp.tracking.replay import replay

log = logging.getLogger("lcp.tracking")

RUN_FILE = "mlflow-run.json"


def previous_run(work_dir: Path, run_name: str) -> dict[str, Any] | None:
    """The record of the work dir's run named `run_name`; None without one, for a damaged record
    (said: an empty file after a node's crash) or another run's (then the training starts a new run)."""
    path = work_dir / RUN_FILE
    if not path.is_file():
        return None
    try:
        previous = read_json(path)
    except Exception as exc:  # noqa: BLE001  a damaged record: start a new run
        previous = exc
    if not isinstance(previous, dict) or not previous.get("run_key"):
        problem = previous if isinstance(previous, Exception) else f"{path}: no run_key"
        log.warning("MLflow: %s; the resumed training starts a new run instead of continuing its own", problem)
        return None
    recorded = str(previous.get("run_name"))
    # a run started before run names carried the seed of a scene's several seeds: the same job's
    if recorded != run_name and not re.fullmatch(re.escape(recorded) + r"/seed\d+", run_name):
        return None
    return previous


def save_run_file(work_dir: Path, run, stopped_tag: str | None = None) -> None:
    """Record TrackedRun `run` as the work dir's run; `stopped_tag`: the tag saying why it stopped, if it did."""
    write_json(
        work_dir / RUN_FILE,
        {
            "run_key": run.run_key,
            "run_id": run.run_id,
            "run_name": run.run_name,
            "experiment": run.experiment,
            "tracking_uri": run.tracking_uri,
            **({"stopped_tag": stopped_tag} if stopped_tag else {}),
        },
    )


def stopped_reason(status: str, error: str) -> str:
    """The value of a stopped run's lcp.stopped_in_epoch.NNN tag."""
    return clip(f"{status}: {error}", 500)


def fail_stopped_run(work_dir: Path, error: str) -> None:
    """End the work dir's run FAILED with `error`, as a training that raised, when its process stopped
    it: a launcher (torchrun, srun) stopped the process that logs (KILLED "Terminated"), or it lost
    its connection to the others (FAILED), because another process failed with `error`. Sent
    through the run's pending journal, so a server that is down gets it with `lcp tracking sync`."""
    try:
        record = read_json(work_dir / RUN_FILE)
    except LCPError:
        return
    if not isinstance(record, dict) or not record.get("stopped_tag") or not record.get("run_key"):
        return
    journal = Journal(journal_path(work_dir, record["run_key"]))
    if not record.get("run_id") and not journal.exists():  # a run MLflow refused: nothing was tracked
        return
    header = {
        "run_key": record["run_key"],
        "run_id": record.get("run_id"),
        "tracking_uri": record.get("tracking_uri"),
        "experiment": record.get("experiment"),
        "artifact_location": None,  # the run exists, or its journal's own header says where it goes
        "run_name": record.get("run_name"),
    }
    try:
        journal.add("tags", header, tags={record["stopped_tag"]: stopped_reason("FAILED", error)})
        journal.add("terminate", header, status="FAILED", end_time=now_ms())
    except OSError as exc:  # a full disk: the training's own failure is what to report
        log.warning("MLflow: run %s not marked FAILED (%s: %s)", record.get("run_name"), exc.filename, exc.strerror)
        return
    result = replay(journal)
    if result.remaining:
        log.warning(
            "MLflow: the failure of run %s is queued in %s (%s); when that is fixed, run: lcp tracking sync %s",
            record.get("run_name"),
            journal.path,
            result.error,
            work_dir,
        )
