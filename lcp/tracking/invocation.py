"""A workflow invocation: one parent run per scene, its jobs' runs grouped beneath.

Only the process that runs the workflow (Snakemake's onstart/onsuccess/onerror) creates
parent runs; jobs never do, so concurrent SLURM jobs cannot make two parents. Jobs learn
their parent from LCP_MLFLOW_PARENT_RUN_IDS ({scene: run id}) and tag their run with
LCP_INVOCATION_ID. A job whose scene has no parent yet (the server was unreachable at
onstart, or the scene was not announced) is adopted by close_invocation, which creates
the missing parent then and sets the job's mlflow.parentRunId.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterable

from lcp.tracking import settings

log = logging.getLogger("lcp.tracking")

STATUSES = ("FINISHED", "FAILED", "KILLED")


@dataclass
class Invocation:
    invocation_id: str
    tracking_uri: str
    parent_run_ids: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        return {settings.ENV_TRACKING_URI: self.tracking_uri, settings.ENV_INVOCATION_ID: self.invocation_id,
                settings.ENV_PARENT_RUN_IDS: json.dumps(self.parent_run_ids, sort_keys=True)}


def _create_parent(client, scene: str, invocation_id: str, artifact_location: str | None) -> str:
    from lcp.tracking.params import runtime_tags
    from lcp.tracking.run import ensure_experiment

    experiment_id = ensure_experiment(client, settings.experiment_name(scene), artifact_location)
    tags = {**runtime_tags(), settings.TAG_INVOCATION: invocation_id, settings.TAG_ROLE: "invocation",
            settings.TAG_SCENE: scene, settings.TAG_STEP: "workflow", "mlflow.source.name": "snakemake"}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = client.create_run(experiment_id, tags=tags, run_name=f"{scene}/workflow/{stamp}")
    return run.info.run_id


def open_invocation(scenes: Iterable[str], *, tracking_uri: str | None = None,
                    invocation_id: str | None = None, set_env: bool = True) -> Invocation:
    """Create a parent run per scene and export the environment jobs read (see module doc).

    Idempotent within one environment: when LCP_INVOCATION_ID is already set (and no other
    invocation_id is given), its parents are reused and only scenes without one get a new
    parent. An unreachable server is a
    warning, not an error (jobs are adopted by close_invocation).
    """
    from lcp.tracking.run import is_transient, make_client

    scenes = [settings.check_name("scene", scene) for scene in dict.fromkeys(scenes)]
    target = settings.check_target(settings.resolve_target(tracking_uri))
    inherited_id = os.environ.get(settings.ENV_INVOCATION_ID)
    invocation_id = invocation_id or inherited_id or uuid.uuid4().hex
    invocation = Invocation(
        invocation_id=invocation_id, tracking_uri=target.uri,
        parent_run_ids=settings.parent_run_ids() if invocation_id == inherited_id else {})
    try:
        client = make_client(target.uri)
        for scene in scenes:
            if scene not in invocation.parent_run_ids:
                invocation.parent_run_ids[scene] = _create_parent(
                    client, scene, invocation.invocation_id, target.artifact_location)
    except Exception as exc:  # noqa: BLE001
        if not is_transient(exc):
            raise
        log.warning("MLflow: could not create the parent runs at %s (%s); jobs log without a parent and "
                    "close_invocation groups them later", target.uri, exc)
    if set_env:
        os.environ.update(invocation.environment())
    return invocation


def close_invocation(status: str = "FINISHED", *, invocation_id: str | None = None,
                     tracking_uri: str | None = None) -> dict[str, str]:
    """Adopt the invocation's orphan runs, then end its parent runs with `status`.

    Returns {scene: parent run id}. Reads LCP_INVOCATION_ID / LCP_MLFLOW_PARENT_RUN_IDS
    when not given. An unreachable server is a warning (returns what is known).
    """
    from lcp.tracking.run import is_transient, make_client

    if status not in STATUSES:
        raise ValueError(f"status {status!r}: expected one of {STATUSES}")
    invocation_id = invocation_id or os.environ.get(settings.ENV_INVOCATION_ID)
    if not invocation_id:
        log.warning("MLflow: no invocation to close (%s is not set)", settings.ENV_INVOCATION_ID)
        return {}
    target = settings.resolve_target(tracking_uri)
    parents = dict(settings.parent_run_ids())
    try:
        client = make_client(target.uri)
        runs = _invocation_runs(client, invocation_id)
        for run in runs:  # parents created by an earlier open/close of this invocation
            if run.data.tags.get(settings.TAG_ROLE) == "invocation":
                parents.setdefault(run.data.tags.get(settings.TAG_SCENE), run.info.run_id)
        for run in runs:
            tags = run.data.tags
            if tags.get(settings.TAG_ROLE) == "invocation" or "mlflow.parentRunId" in tags:
                continue
            scene = tags.get(settings.TAG_SCENE)
            if scene not in parents:
                parents[scene] = _create_parent(client, scene, invocation_id, target.artifact_location)
            client.set_tag(run.info.run_id, "mlflow.parentRunId", parents[scene])
        for parent in parents.values():
            client.set_terminated(parent, status=status)
    except Exception as exc:  # noqa: BLE001
        if not is_transient(exc):
            raise
        log.warning("MLflow: could not close invocation %s at %s (%s); run `lcp tracking close-invocation "
                    "--invocation-id %s --status %s` later", invocation_id, target.uri, exc, invocation_id, status)
    return parents


def _invocation_runs(client, invocation_id: str) -> list:
    experiments = [e.experiment_id for e in client.search_experiments(
        filter_string=f"name LIKE '{settings.EXPERIMENT_PREFIX}%'")]
    if not experiments:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs(experiments, filter_string=f"tags.`{settings.TAG_INVOCATION}` = '{invocation_id}'",
                                  max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs
