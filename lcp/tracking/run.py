"""TrackedRun: one MLflow run that keeps working when the tracking server does not.

Everything is sent through MlflowClient (lcp.tracking.sender). When a call fails for a reason
that may pass (no connection, timeout, a locked database, a 5xx: lcp.tracking.client), the run
warns once, goes offline and appends what it could not send to its pending journal
(lcp/tracking/journal.py); from then on it journals everything, and every `retry_secs` tries
to replay the journal (lcp.tracking.replay, which sends each record exactly once). A record
MLflow refuses is kept in the journal too, for `lcp tracking sync` to report. Metric points
are buffered in memory and sent in batches (`flush_secs`, `max_buffer`).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lcp.io import sync
from lcp.tracking import settings
from lcp.tracking.client import (
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_LENGTH,
    MAX_TAG_LENGTH,
    clip,
    is_transient,
    make_client,
    now_ms,
    short_error,
)
from lcp.tracking.journal import Journal, journal_path
from lcp.tracking.replay import ReplayResult, replay
from lcp.tracking.sender import Sender

log = logging.getLogger("lcp.tracking")


class TrackedRun:
    """One MLflow run (see the module doc). All methods swallow tracking failures."""

    def __init__(
        self,
        *,
        experiment: str,
        run_name: str,
        work_dir: str | os.PathLike,
        tags: Mapping[str, Any] | None = None,
        tracking_uri: str | None = None,
        artifact_location: str | None = None,
        run_id: str | None = None,
        flush_secs: float = 5.0,
        retry_secs: float = 30.0,
        max_buffer: int = MAX_METRICS_PER_BATCH,
    ):
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
        self.replaced: str | None = None  # the id of a lost run this one replaced on resuming
        self._client = None
        self._sender: Sender | None = None
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
            self._sender = Sender(self._client)
            if self.run_id is not None:  # resuming a run: make sure it exists and is marked running again
                try:
                    self._client.update_run(self.run_id, status="RUNNING")
                except Exception as exc:  # noqa: BLE001
                    if is_transient(exc):
                        raise
                    self._replace_lost_run(exc)
            if self.run_id is None:
                header = self._header()
                self.run_id = self._sender.create_run(
                    header, {"start_time": start_time, "tags": self.tags, "run_name": self.run_name}
                )
            self.online = True
        except Exception as exc:  # noqa: BLE001
            if not is_transient(exc):
                self.disabled = True
                log.warning(
                    "MLflow refused to start run %s at %s (%s); this run is not tracked",
                    self.run_name,
                    self.tracking_uri,
                    short_error(exc),
                )
                return self
            self._go_offline(exc, "start the run")
            if self.run_id is None:
                self.journal.add(
                    "create_run", self._header(), run_name=self.run_name, tags=self.tags, start_time=start_time
                )
            return self
        self._send_earlier_records()
        return self

    def _replace_lost_run(self, exc: BaseException) -> None:
        """The run being resumed is gone (deleted in the UI, or not in this store): a new run, with
        its own key and journal, takes its place instead of the training going untracked."""
        log.warning(
            "MLflow run %s (id %s) cannot be resumed at %s (%s); a new run takes its place",
            self.run_name,
            self.run_id,
            self.tracking_uri,
            short_error(exc),
        )
        self.replaced = self.run_id
        self.tags[settings.TAG_REPLACES_RUN] = self.run_id
        self.run_id = None
        self.run_key = uuid.uuid4().hex
        self.tags[settings.TAG_RUN_KEY] = self.run_key
        self.journal = Journal(journal_path(self.work_dir, self.run_key))

    def _send_earlier_records(self) -> None:
        """An earlier attempt of this run that went offline left records in the journal; only an
        offline run replays on its own, so a resumed run that starts online sends them now."""
        if not self.journal.path.exists():
            return
        try:
            result = replay(self.journal, self.tracking_uri)
        except Exception as exc:  # noqa: BLE001  the finish warning names the journal
            log.debug("MLflow replay of %s failed: %s", self.journal.path, short_error(exc))
            return
        if result.sent:
            log.info("MLflow: %d record(s) an earlier attempt of %s had queued sent", result.sent, self.run_name)
        if result.remaining:
            log.warning(
                "MLflow: %d record(s) an earlier attempt of %s queued in %s could not be sent (%s); "
                "when that is fixed, run: lcp tracking sync %s",
                result.remaining,
                self.run_name,
                self.journal.path,
                result.error,
                self.work_dir,
            )

    def finish(self, status: str = "FINISHED") -> ReplayResult | None:
        """Flush, record the final status, and replay what is pending once more."""
        if self.finished:
            return None
        self.finished = True
        self.flush()
        self._do("terminate", status=status, end_time=now_ms())
        if self.online:
            self._forget_sent_journal()
            return None
        result = self.try_replay(force=True)
        if result is not None and result.remaining:
            log.warning(
                "MLflow: %d record(s) of run %s are still queued in %s (%s); when that is fixed, "
                "run: lcp tracking sync %s",
                result.remaining,
                self.run_name,
                self.journal.path,
                result.error,
                self.work_dir,
            )
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
        if self.disabled:
            return f"MLflow run {self.run_name}: not tracked ({self.tracking_uri} refused it; see the warning above)"
        if self.run_id is None:
            return (
                f"MLflow run {self.run_name}: not created yet ({self.tracking_uri} unreachable); "
                f"its records wait in {self.journal.path}"
            )
        try:
            experiment_id = self._client.get_run(self.run_id).info.experiment_id
        except Exception:  # noqa: BLE001  the line is a courtesy
            return f"MLflow run {self.run_name} (id {self.run_id}) at {self.tracking_uri}"
        page = f"#/experiments/{experiment_id}/runs/{self.run_id}"
        if self.tracking_uri.startswith(("http://", "https://")):
            return f"MLflow run {self.run_name} (id {self.run_id}): {self.tracking_uri.rstrip('/')}/{page}"
        return (
            f"MLflow run {self.run_name} (id {self.run_id}): run `{settings.mlflow_ui_command(self.tracking_uri)}`, "
            f"then open http://127.0.0.1:5000/{page}"
        )

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

            monitor = SystemMetricsMonitor(
                self.run_id, sampling_interval=interval_secs, resume_logging=resumed, tracking_uri=self.tracking_uri
            )
            monitor.start()
        except Exception as exc:  # noqa: BLE001  no psutil, or the monitor could not start
            log.warning("MLflow: system metrics not logged (%s)", short_error(exc))
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
            log.debug("MLflow replay of %s failed: %s", self.journal.path, short_error(exc))
            return None
        if not result.stopped:  # records MLflow refused stay queued for `lcp tracking sync` to report
            self.run_id = result.run_id or self.run_id
            self._client = None  # made again on the next call: the store may have restarted
            self.online = True
            log.warning(
                "MLflow: tracking server reachable again; %d pending record(s) of %s sent", result.sent, self.run_name
            )
        return result

    def _do(self, op: str, **fields: Any) -> None:
        if self.disabled:
            return
        if self.online:
            try:
                if self._client is None:
                    self._client = make_client(self.tracking_uri)
                    self._sender = Sender(self._client)
                self._sender.send(self.run_id, {"op": op, **fields}, dedupe=False)
                return
            except Exception as exc:  # noqa: BLE001
                if not is_transient(exc):
                    self._keep_refused(op, fields, exc)
                    return
                self._go_offline(exc, f"send {op}")
        if op == "artifact":
            fields["local_path"] = self._keep_copy(fields["local_path"])
        self.journal.add(op, self._header(), **fields)
        self.try_replay()

    def _keep_refused(self, op: str, fields: dict[str, Any], exc: BaseException) -> None:
        """Queued, not lost: `lcp tracking sync` sends it again and says why it cannot be placed."""
        log.warning(
            "MLflow refused %s of run %s (%s); kept in %s", op, self.run_name, short_error(exc), self.journal.path
        )
        if op == "artifact":
            fields["local_path"] = self._keep_copy(fields["local_path"])
        self.journal.add(op, self._header(), **fields)  # the header first into an empty journal

    def _go_offline(self, exc: BaseException, what: str) -> None:
        self.online = False
        self._last_retry = time.monotonic()
        self.journal.write_header(self._header())
        if not self._warned:
            self._warned = True
            log.warning(
                "MLflow: could not %s at %s (%s); training goes on, and what cannot be sent is kept in %s",
                what,
                self.tracking_uri,
                short_error(exc),
                self.journal.path,
            )

    def _header(self) -> dict[str, Any]:
        return {
            "run_key": self.run_key,
            "run_id": self.run_id,
            "tracking_uri": self.tracking_uri,
            "experiment": self.experiment,
            "artifact_location": self.artifact_location,
            "run_name": self.run_name,
        }

    def _forget_sent_journal(self) -> None:
        """A run that went offline, came back and finished online leaves nothing to send."""
        if self.journal.exists():
            with self.journal.exclusive():
                self.journal.remove_if_done(run_over=True)

    def _keep_copy(self, local_path: str) -> str:
        """A pending artifact is copied into the journal's folder: the original may be temporary.
        The copy is on disk before the journal's record of it (fsynced), which a sync trusts."""
        source = Path(local_path)
        keep = self.journal.files_dir / uuid.uuid4().hex[:8] / source.name
        keep.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, keep)
            files = sorted(path for path in keep.rglob("*") if path.is_file())
        else:
            shutil.copy2(source, keep)
            files = [keep]
        for file in files:
            sync(file)
        return str(keep)
