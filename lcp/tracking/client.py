"""Talking to MLflow: a client for a store, its size limits, experiments and runs found or made, and
which failures may pass (sent again later) and which are a refusal (sent again, refused again)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lcp.io import atomic_path, lock
from lcp.tracking import settings

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_OR_TAGS_PER_BATCH = 100
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
# MLflow error codes meaning "understood and refused": sending again gives the same answer.
PERMANENT_ERRORS = {
    "INVALID_PARAMETER_VALUE",
    "RESOURCE_DOES_NOT_EXIST",
    "RESOURCE_ALREADY_EXISTS",
    "BAD_REQUEST",
    "PERMISSION_DENIED",
    "INVALID_STATE",
    "UNAUTHENTICATED",
    "FEATURE_DISABLED",
    "NOT_IMPLEMENTED",
}


def now_ms() -> int:
    return int(time.time() * 1000)


class Refused(Exception):
    """The target cannot place a record (or its run), and sending it again unchanged will not help."""


def is_transient(exc: BaseException) -> bool:
    """Whether sending again later may succeed (connection, timeout, busy store, server error)."""
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        return exc.error_code not in PERMANENT_ERRORS
    if type(exc).__name__ == "OperationalError" and any(  # sqlalchemy's, raised unwrapped while MLflow opens a store
        word in str(exc).lower()
        for word in ("database is locked", "database is busy", "unable to open", "disk is full", "disk i/o error")
    ):
        return True
    try:
        import requests

        if isinstance(exc, requests.RequestException):
            return True
    except ImportError:  # requests comes with mlflow; this is only defensive
        pass
    return isinstance(exc, OSError)


def clip(value: Any, limit: int) -> str:
    text = str(value)
    if len(text) <= limit:
        return text
    marker = f"...[{len(text)} chars]"
    return text[: limit - len(marker)] + marker


def short_error(exc: BaseException) -> str:
    """One line for a log: a refusal's own reason, else the exception's type and first line; for
    a database error (sqlalchemy's, maybe inside MLflow's), the database's own message, which
    sqlalchemy puts after notes such as "(raised as a result of Query-invoked autoflush; ...)"."""
    if isinstance(exc, Refused):
        return str(exc)
    cause = exc
    while cause is not None and not isinstance(getattr(cause, "orig", None), BaseException):
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        return clip(f"{type(exc).__name__}: ({type(cause.orig).__name__}) {cause.orig}", 300)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return clip(f"{type(exc).__name__}: {text}", 300)


def error_line(exc: BaseException) -> str:
    """The exception's type and its message's first line: what a run that stopped says of why."""
    reason = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__


def make_client(uri: str):
    """A client for the store at `uri`. A local sqlite store is opened (and migrated when older)
    under a lock beside it: MLflow migrates a database without one, and jobs starting at once on
    a fresh store lost their runs and could leave it half-migrated for good. A new one is made
    whole beside its place first (create_sqlite_store)."""
    from mlflow.tracking import MlflowClient

    settings.apply_network_defaults()
    settings.prepare_local_store(uri)
    database = settings.sqlite_database(uri)
    if database is None:
        return MlflowClient(tracking_uri=uri)
    with open(f"{database}.init-lock", "a") as init_lock:
        lock(init_lock, init_lock.name)
        if not database.exists():
            create_sqlite_store(database, settings.sqlite_artifact_location(uri))
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)  # an older store is migrated here
    return client


def create_sqlite_store(database: Path, artifact_location: str) -> None:
    """Create and migrate a new MLflow database under a temporary name beside `database`, then
    rename it into place: creation cut short (a full disk) left a half-made database that every
    later run failed to open ("table spans already exists"), each run untracked."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with atomic_path(database, overwrite=False) as staged:
        SqlAlchemyStore(f"sqlite:///{staged}", artifact_location).engine.dispose()


def ensure_experiment(client, name: str, artifact_location: str | None, description: str | None = None) -> str:
    """The id of experiment `name`, created if missing (a concurrent creation is not an error), as
    a model-training experiment (the UI's view of runs, not its GenAI view) with `description`."""
    from mlflow.exceptions import MlflowException

    tags = {settings.EXPERIMENT_KIND_TAG: settings.EXPERIMENT_KIND}
    if description:
        tags[settings.DESCRIPTION_TAG] = description
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        if artifact_location:  # one folder per experiment under the store's artifact root
            artifact_location = f"{artifact_location.rstrip('/')}/{name}"
        try:
            return client.create_experiment(name, artifact_location=artifact_location, tags=tags)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = client.get_experiment_by_name(name)
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    for key, value in tags.items():  # experiments of older stores, or a scene whose description changed
        if experiment.tags.get(key) != value:
            client.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


def find_run_by_key(client, experiment_id: str, run_key: str) -> str | None:
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{settings.TAG_RUN_KEY}` = '{run_key}'", max_results=1
    )
    return runs[0].info.run_id if runs else None
