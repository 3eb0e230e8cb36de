"""A workflow invocation: one parent run per scene, its jobs' runs grouped beneath.

Only the process that runs the workflow (Snakemake's onstart/onsuccess/onerror) creates
parent runs; jobs never do, so concurrent SLURM jobs cannot make two parents. Jobs learn
their parent from LCP_MLFLOW_PARENT_RUN_IDS ({scene: run id}) and tag their run with
LCP_INVOCATION_ID. A job whose scene has no parent yet (the server was unreachable at
onstart, or the scene was not announced) is adopted by close_invocation, which creates
the missing parent then and sets the job's mlflow.parentRunId.

A scene's experiment carries the scene's description (open_invocation's `descriptions`, from
the workflow config). When the invocation closes, each parent run summarises its children:
metrics <step>/<method>[/<variant>][/seed<N>]/<name> with name AP (an evaluation's test/AP),
val_AP_last and val_AP_best (a training's val/AP), all in percent, and the artifact
summary/children.md, a table of every child run.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lcp.tracking import settings

log = logging.getLogger("lcp.tracking")

STATUSES = ("FINISHED", "FAILED", "KILLED")


@dataclass
class Invocation:
    invocation_id: str
    tracking_uri: str
    parent_run_ids: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        return {
            settings.ENV_TRACKING_URI: self.tracking_uri,
            settings.ENV_INVOCATION_ID: self.invocation_id,
            settings.ENV_PARENT_RUN_IDS: json.dumps(self.parent_run_ids, sort_keys=True),
        }


def _create_parent(
    client,
    scene: str,
    invocation_id: str,
    artifact_location: str | None,
    description: str | None = None,
    plan: Mapping[str, Iterable[str]] | None = None,
) -> str:
    from lcp.tracking.client import ensure_experiment
    from lcp.tracking.params import runtime_tags

    experiment_id = ensure_experiment(client, settings.experiment_name(scene), artifact_location, description)
    tags = {
        **runtime_tags(),
        settings.TAG_INVOCATION: invocation_id,
        settings.TAG_ROLE: "invocation",
        settings.TAG_WORKFLOW_DIR: os.getcwd(),
        settings.TAG_CONTROLLER: _process_identity(os.getpid()),
        settings.TAG_SCENE: scene,
        settings.TAG_STEP: "workflow",
        "mlflow.source.name": "snakemake",
    }
    if plan is not None:  # what the scene is now: lcp compare leaves out seeds and severities it dropped
        tags[settings.TAG_SEEDS] = ",".join(map(str, plan["seeds"]))
        tags[settings.TAG_VARIANTS] = ",".join(plan["variants"])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = client.create_run(experiment_id, tags=tags, run_name=f"{scene}/workflow/{stamp}")
    return run.info.run_id


def open_invocation(
    scenes: Iterable[str],
    *,
    tracking_uri: str | None = None,
    invocation_id: str | None = None,
    set_env: bool = True,
    descriptions: Mapping[str, str | None] | None = None,
    plans: Mapping[str, Mapping[str, Iterable[str]]] | None = None,
) -> Invocation:
    """Create a parent run per scene and export the environment jobs read (see module doc).

    `descriptions` ({scene: text}, e.g. the workflow config's scene descriptions) become the
    descriptions of the scenes' experiments; `plans` ({scene: {"seeds": [...], "variants":
    [...]}}, the config's seeds and sweep severities) are tagged on the parent runs.

    Idempotent within one environment: when LCP_INVOCATION_ID is already set (and no other
    invocation_id is given), its parents are reused and only scenes without one get a new
    parent. An unreachable server is a
    warning, not an error (jobs are adopted by close_invocation).
    """
    from lcp.tracking.client import is_transient, make_client

    scenes = [settings.check_name("scene", scene) for scene in dict.fromkeys(scenes)]
    target = settings.check_target(settings.resolve_target(tracking_uri))
    inherited_id = os.environ.get(settings.ENV_INVOCATION_ID)
    invocation_id = invocation_id or inherited_id or uuid.uuid4().hex
    invocation = Invocation(
        invocation_id=invocation_id,
        tracking_uri=target.uri,
        parent_run_ids=settings.parent_run_ids() if invocation_id == inherited_id else {},
    )
    try:
        client = make_client(target.uri)
        for scene in scenes:
            end_killed_invocations(client, scene, invocation.invocation_id)
            if scene not in invocation.parent_run_ids:
                invocation.parent_run_ids[scene] = _create_parent(
                    client,
                    scene,
                    invocation.invocation_id,
                    target.artifact_location,
                    (descriptions or {}).get(scene),
                    (plans or {}).get(scene),
                )
    except Exception as exc:
        if not is_transient(exc):
            raise
        log.warning(
            "MLflow: could not create the parent runs at %s (%s); jobs log without a parent and "
            "close_invocation groups them later",
            target.uri,
            exc,
        )
    if set_env:
        os.environ.update(invocation.environment())
    return invocation


def _process_identity(pid: int) -> str:
    """'<host> <pid> <start time>' of a process of this machine; the start time (Linux's, in
    clock ticks since boot; empty elsewhere) tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            start = stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        start = ""
    return f"{socket.gethostname()} {pid} {start}"


def _controller_gone(identity: str | None) -> bool:
    """Whether the snakemake process a parent run names has ended; False when it cannot be told
    (another machine, an lcp from before the tag)."""
    parts = (identity or "").split(" ")
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    return _process_identity(int(parts[1])) != identity


def end_killed_invocations(client, scene: str, invocation_id: str) -> None:
    """End as KILLED the parent runs an earlier run of the workflow in this folder left RUNNING,
    with their runs still RUNNING, once its snakemake process is gone from this machine: it was
    killed (SIGKILL), so nothing closed them, and they stayed RUNNING in the UI for good. A run
    of the workflow that goes on at the same time (other targets), or whose process ran on
    another machine (a lost login node), is left alone. Any problem here is only a warning."""
    try:
        experiment = client.get_experiment_by_name(settings.experiment_name(scene))
        if experiment is None:
            return
        parents = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`{settings.TAG_ROLE}` = 'invocation' and attributes.status = 'RUNNING'",
        )
        here = os.getcwd()
        for parent in parents:
            stale_id = parent.data.tags.get(settings.TAG_INVOCATION)
            if parent.data.tags.get(settings.TAG_WORKFLOW_DIR) != here or stale_id in (None, invocation_id):
                continue
            if not _controller_gone(parent.data.tags.get(settings.TAG_CONTROLLER)):
                continue
            left = [
                run
                for run in _invocation_runs(client, stale_id)
                if run.info.status == "RUNNING" and run.info.run_id != parent.info.run_id
            ]
            for run in left:  # a training resumed now reopens its run
                client.set_terminated(run.info.run_id, status="KILLED")
            client.set_tag(parent.info.run_id, settings.TAG_ENDED_BY, f"the run of the workflow {invocation_id}")
            client.set_terminated(parent.info.run_id, status="KILLED")
            log.warning(
                "MLflow: %s and %d of its runs were left RUNNING by a killed run of the workflow; ended as KILLED",
                parent.info.run_name,
                len(left),
            )
    except Exception as exc:  # noqa: BLE001  tidying the store must not stop the workflow
        log.warning("MLflow: could not end the runs a killed run of the workflow left RUNNING (%s)", exc)


def close_invocation(
    status: str = "FINISHED",
    *,
    invocation_id: str | None = None,
    tracking_uri: str | None = None,
    workflow_logs: Sequence[str] = (),
) -> dict[str, str]:
    """Adopt the invocation's orphan runs, end as KILLED those still RUNNING, then end its parent
    runs with `status`, each with `workflow_logs` (Snakemake's logs of the run: which job failed,
    and its log) as artifacts in workflow/.

    Snakemake closes an invocation once its jobs have ended, so a run still RUNNING then is one
    whose process was killed without ending it (SIGKILL, the out-of-memory killer, a lost node)
    before a retry started a new run; it stayed RUNNING for good. A later resume reopens it.

    Returns {scene: parent run id}. Reads LCP_INVOCATION_ID / LCP_MLFLOW_PARENT_RUN_IDS
    when not given. An unreachable server is a warning (returns what is known).
    """
    from lcp.tracking.client import is_transient, make_client

    if status not in STATUSES:
        raise ValueError(f"status {status!r}: expected one of {STATUSES}")
    invocation_id = invocation_id or os.environ.get(settings.ENV_INVOCATION_ID)
    if not invocation_id:
        log.warning("MLflow: no invocation to close (%s is not set)", settings.ENV_INVOCATION_ID)
        return {}
    target = settings.check_target(settings.resolve_target(tracking_uri))
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
        left = [r for r in runs if r.info.status == "RUNNING" and r.data.tags.get(settings.TAG_ROLE) != "invocation"]
        for run in left:
            ended_by = "the end of its run of the workflow, which had not seen it end"
            client.set_tag(run.info.run_id, settings.TAG_ENDED_BY, ended_by)
            client.set_terminated(run.info.run_id, status="KILLED")
        if left:
            runs = _invocation_runs(client, invocation_id)
        for scene, parent in parents.items():
            children = [
                run
                for run in runs
                if run.data.tags.get(settings.TAG_SCENE) == scene
                and run.data.tags.get(settings.TAG_ROLE) != "invocation"
            ]
            try:
                summarise_children(client, parent, children)
            except Exception as exc:  # noqa: BLE001  a summary is a courtesy; closing the parent is not
                log.warning("MLflow: could not summarise the runs of parent %s (%s)", parent, exc)
            for workflow_log in workflow_logs:
                try:
                    client.log_artifact(parent, workflow_log, "workflow")
                except Exception as exc:  # noqa: BLE001  a courtesy, as the summary: the parent must end
                    log.warning("MLflow: could not keep %s on parent %s (%s)", workflow_log, parent, exc)
            client.set_terminated(parent, status=status)
    except Exception as exc:
        if not is_transient(exc):
            raise
        log.warning(
            "MLflow: could not close invocation %s at %s (%s); run `lcp tracking close-invocation "
            "--invocation-id %s --status %s` later",
            invocation_id,
            target.uri,
            exc,
            invocation_id,
            status,
        )
    return parents


def _invocation_runs(client, invocation_id: str) -> list:
    experiments = [
        e.experiment_id for e in client.search_experiments(filter_string=f"name LIKE '{settings.EXPERIMENT_PREFIX}%'")
    ]
    if not experiments:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs(
            experiments,
            filter_string=f"tags.`{settings.TAG_INVOCATION}` = '{invocation_id}'",
            max_results=1000,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def child_summary(client, run) -> dict[str, float]:
    """The summary metrics of one child run (see the module doc), keyed without the run's prefix."""
    metrics = run.data.metrics
    if "test/AP" in metrics:
        return {"AP": metrics["test/AP"]}
    if "val/AP" in metrics:
        history = [m.value for m in client.get_metric_history(run.info.run_id, "val/AP")]
        return {"val_AP_last": metrics["val/AP"], "val_AP_best": max(history, default=metrics["val/AP"])}
    return {}


def summarise_children(client, parent_id: str, children: list) -> None:
    """Log the children's summary metrics and the table summary/children.md on the parent run."""
    import tempfile
    from pathlib import Path

    from mlflow.entities import Metric

    from lcp.io import write_text
    from lcp.report.metrics import one_decimal
    from lcp.tracking.client import now_ms
    from lcp.tracking.params import safe_key

    if not children:
        return
    # A job retried before its first checkpoint starts a second run of the same name: the
    # parent's metric of a name is that of the newest finished run (else the newest run).
    chosen: dict[str, tuple[tuple[bool, int], dict[str, float]]] = {}
    rows = []
    for run in sorted(children, key=lambda r: (r.info.run_name or "", r.data.tags.get(settings.TAG_SEED, ""))):
        tags = run.data.tags
        seed = tags.get(settings.TAG_SEED)
        parts = [
            tags.get(settings.TAG_STEP),
            tags.get(settings.TAG_METHOD),
            tags.get(settings.TAG_VARIANT),
            f"seed{seed}" if seed else None,
        ]
        prefix = "/".join(part for part in parts if part)
        summary = child_summary(client, run)
        rank = (run.info.status == "FINISHED", run.info.start_time or 0)
        if prefix not in chosen or rank > chosen[prefix][0]:
            chosen[prefix] = (rank, summary)
        values = ", ".join(f"{name} {one_decimal(value)}" for name, value in summary.items())
        rows.append(f"| {run.info.run_name} | {seed or ''} | {run.info.status} | {values} | {run.info.run_id} |")
    metrics = [
        Metric(safe_key(f"{prefix}/{name}"), value, now_ms(), 0)
        for prefix, (_, summary) in chosen.items()
        for name, value in summary.items()
    ]
    if metrics:
        client.log_batch(parent_id, metrics=metrics)
    table = ["| run | seed | status | AP (percent) | run id |", "| --- | --- | --- | --- | --- |", *rows]
    with tempfile.TemporaryDirectory(prefix="lcp-summary-") as folder:
        path = Path(folder) / "children.md"
        write_text(path, "\n".join(table) + "\n")
        client.log_artifact(parent_id, str(path), "summary")
