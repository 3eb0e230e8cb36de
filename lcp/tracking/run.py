"""TrackedRun: one MLflow run that keeps working when the tracking server does not.

Everything is sent through MlflowClient. When a call fails for a reason that may pass (no
connection, timeout, a locked database, a 5xx), the run warns once, goes offline and
appends what it could not send to its pending journal (lcp/tracking/journal.py); from
then on it journals everything, and every `retry_secs` tries to replay the journal. The
replay (also what `lcp tracking sync` runs) sends each record exactly once:

- the run itself: found by its `lcp.run_key` tag before it is created, so a creation
  whose answer was lost is not repeated;
- metric points: only those (key, step, timestamp, value) the run does not hold yet;
- params, tags, artifacts and the final status: idempotent in MLflow.

Nothing is ever dropped: a record MLflow refuses (invalid value, a param that already holds
another value, a deleted run) stays queued and the replay says why; a run the target server
does not hold (a journal synced to another server) keeps all its records for the right one.
Metric points are buffered in memory and sent in batches (`flush_secs`, `max_buffer`).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lcp.errors import LCPError
from lcp.tracking import settings
from lcp.tracking.journal import Journal, journal_path

log = logging.getLogger("lcp.tracking")

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_OR_TAGS_PER_BATCH = 100
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
# MLflow error codes meaning "understood and refused": sending again gives the same answer.
PERMANENT_ERRORS = {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS",
                    "BAD_REQUEST", "PERMISSION_DENIED", "INVALID_STATE", "UNAUTHENTICATED",
                    "FEATURE_DISABLED", "NOT_IMPLEMENTED"}


def now_ms() -> int:
    return int(time.time() * 1000)


class Refused(Exception):
    """The target cannot place a record (or its run), and sending it again unchanged will not help."""


def is_transient(exc: BaseException) -> bool:
    """Whether sending again later may succeed (connection, timeout, busy store, server error)."""
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        return exc.error_code not in PERMANENT_ERRORS
    try:
        import requests

        if isinstance(exc, requests.RequestException):
            return True
    except ImportError:  # requests comes with mlflow; this is only defensive
        pass
    return isinstance(exc, OSError)


def make_client(uri: str):
    from mlflow.tracking import MlflowClient

    settings.apply_network_defaults()
    settings.prepare_local_store(uri)
    return MlflowClient(tracking_uri=uri)


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
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{settings.TAG_RUN_KEY}` = '{run_key}'",
                              max_results=1)
    return runs[0].info.run_id if runs else None


def clip(value: Any, limit: int) -> str:
    text = str(value)
    if len(text) <= limit:
        return text
    marker = f"...[{len(text)} chars]"
    return text[:limit - len(marker)] + marker


class _Sender:
    """The MLflow calls of each journal operation, shared by live sending and replay."""

    def __init__(self, client):
        self.client = client
        self._history: dict[tuple[str, str], set] = {}

    def create_run(self, header: Mapping[str, Any], record: Mapping[str, Any]) -> str:
        experiment_id = ensure_experiment(self.client, header["experiment"], header.get("artifact_location"))
        existing = find_run_by_key(self.client, experiment_id, header["run_key"])
        if existing:
            return existing
        run = self.client.create_run(experiment_id, start_time=record["start_time"],
                                     tags=dict(record["tags"]), run_name=record["run_name"])
        return run.info.run_id

    def metrics(self, run_id: str, points: list, dedupe: bool) -> None:
        from mlflow.entities import Metric

        if dedupe:
            points = [p for p in points if not self._already_logged(run_id, p)]
        for start in range(0, len(points), MAX_METRICS_PER_BATCH):
            chunk = points[start:start + MAX_METRICS_PER_BATCH]
            self.client.log_batch(run_id, metrics=[Metric(key, float(value), int(ts), int(step))
                                                   for key, value, step, ts in chunk])
            for point in chunk:
                self._known(run_id, point[0]).add(_point_identity(point))

    def params(self, run_id: str, params: Mapping[str, Any], dedupe: bool) -> None:
        from mlflow.entities import Param

        params = {k: clip(v, MAX_PARAM_LENGTH) for k, v in params.items()}
        conflicts = {}
        if dedupe:
            logged = self.client.get_run(run_id).data.params
            conflicts = {k: v for k, v in params.items() if k in logged and logged[k] != v}
            params = {k: v for k, v in params.items() if k not in logged}
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), MAX_PARAMS_OR_TAGS_PER_BATCH):
            self.client.log_batch(run_id, params=items[start:start + MAX_PARAMS_OR_TAGS_PER_BATCH])
        if conflicts:  # MLflow keeps a param's first value: the queued one would be silently lost
            key, value = next(iter(conflicts.items()))
            raise Refused(f"param {key} is {clip(logged[key], 80)!r} in the run, the queued record has "
                          f"{clip(value, 80)!r} (MLflow never changes a param)")

    def tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, clip(v, MAX_TAG_LENGTH)) for k, v in tags.items()]
        for start in range(0, len(items), MAX_PARAMS_OR_TAGS_PER_BATCH):
            self.client.log_batch(run_id, tags=items[start:start + MAX_PARAMS_OR_TAGS_PER_BATCH])

    def artifact(self, run_id: str, local_path: str, artifact_path: str | None) -> None:
        if Path(local_path).is_dir():
            self.client.log_artifacts(run_id, local_path, artifact_path)
        else:
            self.client.log_artifact(run_id, local_path, artifact_path)

    def inputs(self, run_id: str, datasets: list) -> None:
        from mlflow.entities import Dataset, DatasetInput, InputTag

        self.client.log_inputs(run_id, [
            DatasetInput(Dataset(name=d["name"], digest=d["digest"], source_type=d["source_type"], source=d["source"],
                                 profile=d.get("profile")), tags=[InputTag("mlflow.data.context", d["context"])])
            for d in datasets])

    def register_model(self, run_id: str, name: str, artifact_path: str, description: str | None) -> None:
        """Version of registered model `name` from the run's artifact folder `artifact_path`; at most one
        version per run, so a replay does not register twice."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name, description=description)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        if self.client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
            return
        source = f"{self.client.get_run(run_id).info.artifact_uri.rstrip('/')}/{artifact_path}"
        self.client.create_model_version(name, source, run_id=run_id, description=description,
                                         await_creation_for=0)

    def terminate(self, run_id: str, status: str, end_time: int) -> None:
        self.client.set_terminated(run_id, status=status, end_time=end_time)

    def check_run(self, run_id: str, uri: str, recorded: str | None) -> None:
        """Refused unless the target holds run `run_id`, active: records of a run the server does not
        hold can never be placed there, and must wait for the server that does."""
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            elsewhere = f" (its journal recorded {recorded})" if recorded and recorded != uri else ""
            raise Refused(f"run {run_id} does not exist at {uri}{elsewhere}") from None
        if run.info.lifecycle_stage == "deleted":
            raise Refused(f"run {run_id} is deleted at {uri}; restore it (mlflow runs restore --run-id "
                          f"{run_id}) to send its records")

    def _known(self, run_id: str, key: str) -> set:
        if (run_id, key) not in self._history:
            history = self.client.get_metric_history(run_id, key)
            self._history[(run_id, key)] = {_point_identity((m.key, m.value, m.step, m.timestamp))
                                            for m in history}
        return self._history[(run_id, key)]

    def _already_logged(self, run_id: str, point) -> bool:
        return _point_identity(point) in self._known(run_id, point[0])


def _point_identity(point) -> tuple:
    _, value, step, timestamp = point
    value = float(value)
    return int(step), int(timestamp), "nan" if math.isnan(value) else value


@dataclass
class ReplayResult:
    journal: Path
    run_id: str | None
    sent: int
    remaining: int  # records still queued: not placed, for the reason in `error`
    refused: int = 0  # of those, the ones the target refused (sending again unchanged will not help)
    error: str | None = None
    uri: str | None = None

    @property
    def stopped(self) -> bool:
        """Whether records were left unsent because the target could not be reached."""
        return self.remaining > self.refused


def replay(journal: Journal, tracking_uri: str | None = None, client=None) -> ReplayResult:
    """Send a journal's unacknowledged records in order, each exactly once (see the module doc),
    to `tracking_uri`, else to the URI the journal recorded.

    Only a placed record is acknowledged. Stops at the first transient failure; a record the
    target refuses stays queued and the replay goes on with the next; a run the target does not
    hold (or holds deleted) keeps all its records.
    """
    with journal.exclusive():
        try:
            state = journal.read()
        except LCPError as exc:
            return ReplayResult(journal.path, None, 0, 1, 1, error=str(exc))
        if state.header is None or not state.pending:
            return ReplayResult(journal.path, state.run_id, 0, 0)
        recorded = state.header.get("tracking_uri")
        uri = tracking_uri or recorded
        pending = state.pending

        def kept(sent: int, remaining: int, refused: int, error: str) -> ReplayResult:
            return ReplayResult(journal.path, run_id, sent, remaining, refused, error=error, uri=uri)

        run_id = state.run_id
        if not uri:
            return kept(0, len(pending), len(pending), "the journal records no tracking URI; name one "
                        "with --tracking-uri")
        try:
            sender = _Sender(client or make_client(uri))
            if run_id is not None:
                sender.check_run(run_id, uri, recorded)
        except Exception as exc:  # noqa: BLE001  classified: nothing was sent
            refused = 0 if is_transient(exc) else len(pending)
            return kept(0, len(pending), refused, _short(exc))
        sent, refusals = 0, []
        for index, record in enumerate(pending):
            try:
                if record["op"] == "create_run":
                    run_id = sender.create_run(state.header, record)
                elif run_id is None:
                    raise Refused("the run was never created (its create_run record is missing)")
                else:
                    _apply(sender, run_id, record, dedupe=True)
            except Exception as exc:  # noqa: BLE001  classified below
                left = len(pending) - index
                if is_transient(exc):
                    return kept(sent, left + len(refusals), len(refusals), _short(exc))
                if run_id is None:  # nothing after it can be placed either
                    return kept(sent, left + len(refusals), left + len(refusals), _short(exc))
                log.warning("MLflow refused %s record of %s (kept): %s", record["op"], journal.path, _short(exc))
                refusals.append(f"{record['op']}: {_short(exc)}")
                continue
            sent += 1
            journal.ack(record["id"], run_id)
        if refusals:
            more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
            return kept(sent, len(refusals), len(refusals), refusals[0] + more)
        return ReplayResult(journal.path, run_id, sent, 0, uri=uri)


def _apply(sender: _Sender, run_id: str, record: Mapping[str, Any], dedupe: bool) -> None:
    op = record["op"]
    if op == "metrics":
        sender.metrics(run_id, record["metrics"], dedupe)
    elif op == "params":
        sender.params(run_id, record["params"], dedupe)
    elif op == "tags":
        sender.tags(run_id, record["tags"])
    elif op == "artifact":
        sender.artifact(run_id, record["local_path"], record.get("artifact_path"))
    elif op == "inputs":
        sender.inputs(run_id, record["datasets"])
    elif op == "register_model":
        sender.register_model(run_id, record["name"], record["artifact_path"], record.get("description"))
    elif op == "terminate":
        sender.terminate(run_id, record["status"], record["end_time"])
    else:
        raise ValueError(f"unknown journal operation {op!r}")


def _short(exc: BaseException) -> str:
    if isinstance(exc, Refused):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return clip(f"{type(exc).__name__}: {text}", 300)


class TrackedRun:
    """One MLflow run (see the module doc). All methods swallow tracking failures."""

    def __init__(self, *, experiment: str, run_name: str, work_dir: str | os.PathLike,
                 tags: Mapping[str, Any] | None = None, tracking_uri: str | None = None,
                 artifact_location: str | None = None, run_id: str | None = None,
                 flush_secs: float = 5.0, retry_secs: float = 30.0, max_buffer: int = MAX_METRICS_PER_BATCH):
        target = settings.resolve_target(tracking_uri)
        self.tracking_uri = target.uri
        self.artifact_location = artifact_location or target.artifact_location
        self.experiment = experiment
        self.run_name = run_name
        self.work_dir = Path(work_dir)
        self.tags = {k: str(v) for k, v in (tags or {}).items() if v is not None}
        self.run_id = run_id
        self.run_key = self.tags.get(settings.TAG_RUN_KEY) or uuid.uuid4().hex
        self.tags[settings.TAG_RUN_KEY] = self.run_key
        self.journal = Journal(journal_path(self.work_dir, self.run_key))
        self.flush_secs = flush_secs
        self.retry_secs = retry_secs
        self.max_buffer = max_buffer
        self.online = False
        self.disabled = False  # MLflow refused the run itself: nothing to send, nothing to keep
        self._client = None
        self._sender: _Sender | None = None
        self._buffer: list[list] = []
        self._last_flush = time.monotonic()
        self._last_retry = time.monotonic()
        self._warned = False
        self.finished = False

    # ---- life cycle -----------------------------------------------------------------

    def start(self) -> TrackedRun:
        start_time = now_ms()
        try:
            self._client = make_client(self.tracking_uri)
            self._sender = _Sender(self._client)
            if self.run_id is None:
                header = self._header()
                self.run_id = self._sender.create_run(
                    header, {"start_time": start_time, "tags": self.tags, "run_name": self.run_name})
            else:  # resuming a run: make sure it exists and is marked running again
                self._client.update_run(self.run_id, status="RUNNING")
            self.online = True
        except Exception as exc:  # noqa: BLE001
            if not is_transient(exc):
                self.disabled = True
                log.warning("MLflow refused to start run %s at %s (%s); this run is not tracked",
                            self.run_name, self.tracking_uri, _short(exc))
                return self
            self._go_offline(exc, "start the run")
            if self.run_id is None:
                self.journal.add("create_run", run_name=self.run_name, tags=self.tags, start_time=start_time)
        return self

    def finish(self, status: str = "FINISHED") -> ReplayResult | None:
        """Flush, record the final status, and replay what is pending once more."""
        if self.finished:
            return None
        self.finished = True
        self.flush()
        self._do("terminate", status=status, end_time=now_ms())
        if self.online:
            return None
        result = self.try_replay(force=True)
        if result is not None and result.remaining:
            log.warning("MLflow: %d record(s) of run %s are still queued in %s (%s); when that is fixed, "
                        "run: lcp tracking sync %s", result.remaining, self.run_name, self.journal.path,
                        result.error, self.work_dir)
        return result

    # ---- logging --------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        if params:
            self._do("params", params={k: clip(v, MAX_PARAM_LENGTH) for k, v in params.items()})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        tags = {k: clip(v, MAX_TAG_LENGTH) for k, v in tags.items() if v is not None}
        if tags:
            self._do("tags", tags=tags)

    def log_metrics(self, metrics: Mapping[str, float], step: int, timestamp: int | None = None) -> None:
        timestamp = now_ms() if timestamp is None else timestamp
        for key, value in metrics.items():
            self._buffer.append([key, float(value), int(step), timestamp])
        if len(self._buffer) >= self.max_buffer or time.monotonic() - self._last_flush >= self.flush_secs:
            self.flush()

    def log_artifact(self, local_path: str | os.PathLike, artifact_path: str | None = None) -> None:
        local_path = Path(local_path)
        if not local_path.exists():
            log.warning("MLflow: artifact %s does not exist; not logged", local_path)
            return
        self._do("artifact", local_path=str(local_path.resolve()), artifact_path=artifact_path)

    def log_inputs(self, datasets: list[dict[str, str]]) -> None:
        """Dataset inputs, as lcp.tracking.params.dataset_inputs describes them."""
        if datasets:
            self._do("inputs", datasets=datasets)

    def register_model(self, name: str, artifact_path: str, description: str | None = None) -> None:
        """Register the run's artifact folder `artifact_path` as a version of model `name`."""
        self._do("register_model", name=name, artifact_path=artifact_path, description=description)

    def flush(self) -> None:
        points, self._buffer = self._buffer, []
        self._last_flush = time.monotonic()
        if points:
            self._do("metrics", metrics=points)
        elif not self.online:
            self.try_replay()

    # ---- where to see it -------------------------------------------------------------

    def where(self) -> str:
        """One line naming the run, its id and its page in the MLflow UI."""
        if self.run_id is None:
            return (f"MLflow run {self.run_name}: not created yet ({self.tracking_uri} unreachable); "
                    f"its records wait in {self.journal.path}")
        try:
            experiment_id = self._client.get_run(self.run_id).info.experiment_id
        except Exception:  # noqa: BLE001  the line is a courtesy
            return f"MLflow run {self.run_name} (id {self.run_id}) at {self.tracking_uri}"
        page = f"#/experiments/{experiment_id}/runs/{self.run_id}"
        if self.tracking_uri.startswith(("http://", "https://")):
            return f"MLflow run {self.run_name} (id {self.run_id}): {self.tracking_uri.rstrip('/')}/{page}"
        return (f"MLflow run {self.run_name} (id {self.run_id}): run `mlflow ui --backend-store-uri "
                f"{self.tracking_uri}`, then open http://127.0.0.1:5000/{page}")

    def start_system_metrics(self, interval_secs: float, resumed: bool = False):
        """MLflow's system metrics monitor (system/cpu_utilization_percentage, system/system_memory_usage_megabytes,
        ...; GPU ones where nvidia-ml-py is installed) on this run, or None: it needs psutil and a run
        the server holds, and samples the store directly, not through the journal (a sample lost while
        the server is down is not worth replaying)."""
        if self.run_id is None or not self.online or interval_secs <= 0:
            return None
        try:
            import psutil  # noqa: F401  the monitor's CPU and memory readings
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

            monitor = SystemMetricsMonitor(self.run_id, sampling_interval=interval_secs, resume_logging=resumed,
                                           tracking_uri=self.tracking_uri)
            monitor.start()
        except Exception as exc:  # noqa: BLE001  no psutil, or the monitor could not start
            log.warning("MLflow: system metrics not logged (%s)", _short(exc))
            return None
        return monitor

    # ---- online / offline -----------------------------------------------------------

    def try_replay(self, force: bool = False) -> ReplayResult | None:
        """Replay the journal if `retry_secs` have passed since the last try (or `force`)."""
        if self.online or self.disabled or (not force and time.monotonic() - self._last_retry < self.retry_secs):
            return None
        self._last_retry = time.monotonic()
        try:
            result = replay(self.journal, self.tracking_uri)
        except Exception as exc:  # noqa: BLE001  e.g. the client cannot even be made
            log.debug("MLflow replay of %s failed: %s", self.journal.path, _short(exc))
            return None
        if not result.stopped:  # records MLflow refused stay queued for `lcp tracking sync` to report
            self.run_id = result.run_id or self.run_id
            self._client = None  # made again on the next call: the store may have restarted
            self.online = True
            log.warning("MLflow: tracking server reachable again; %d pending record(s) of %s sent",
                        result.sent, self.run_name)
        return result

    def _do(self, op: str, **fields: Any) -> None:
        if self.disabled:
            return
        if self.online:
            try:
                if self._client is None:
                    self._client = make_client(self.tracking_uri)
                    self._sender = _Sender(self._client)
                _apply(self._sender, self.run_id, {"op": op, **fields}, dedupe=False)
                return
            except Exception as exc:  # noqa: BLE001
                if not is_transient(exc):
                    self._keep_refused(op, fields, exc)
                    return
                self._go_offline(exc, f"send {op}")
        if op == "artifact":
            fields["local_path"] = self._keep_copy(fields["local_path"])
        self.journal.add(op, **fields)
        self.try_replay()

    def _keep_refused(self, op: str, fields: dict[str, Any], exc: BaseException) -> None:
        """Queued, not lost: `lcp tracking sync` sends it again and says why it cannot be placed."""
        log.warning("MLflow refused %s of run %s (%s); kept in %s", op, self.run_name, _short(exc), self.journal.path)
        self.journal.write_header(self._header())
        if op == "artifact":
            fields["local_path"] = self._keep_copy(fields["local_path"])
        self.journal.add(op, **fields)

    def _go_offline(self, exc: BaseException, what: str) -> None:
        self.online = False
        self._last_retry = time.monotonic()
        self.journal.write_header(self._header())
        if not self._warned:
            self._warned = True
            log.warning("MLflow: could not %s at %s (%s); training goes on, and what cannot be sent is kept "
                        "in %s", what, self.tracking_uri, _short(exc), self.journal.path)

    def _header(self) -> dict[str, Any]:
        return {"run_key": self.run_key, "run_id": self.run_id, "tracking_uri": self.tracking_uri,
                "experiment": self.experiment, "artifact_location": self.artifact_location,
                "run_name": self.run_name}

    def _keep_copy(self, local_path: str) -> str:
        """A pending artifact is copied into the journal's folder: the original may be temporary."""
        source = Path(local_path)
        keep = self.journal.path.parent / f"{self.run_key}-files" / uuid.uuid4().hex[:8] / source.name
        keep.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, keep)
        else:
            shutil.copy2(source, keep)
        return str(keep)


def replay_all(journals: Iterable[Path], tracking_uri: str | None = None) -> Iterator[ReplayResult]:
    """Replay each journal in turn (one result each, as it is done)."""
    for path in journals:
        yield replay(Journal(path), tracking_uri)
