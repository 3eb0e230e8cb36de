"""Each journal record (lcp/tracking/journal.py) as the MLflow calls that place it, the same for a
live run and for a replay; with `dedupe`, a replay skips what the run already holds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lcp.tracking.client import (
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_LENGTH,
    MAX_PARAMS_OR_TAGS_PER_BATCH,
    MAX_TAG_LENGTH,
    Refused,
    clip,
    ensure_experiment,
    find_run_by_key,
)


class Sender:
    """The MLflow calls of each journal operation, shared by live sending and replay."""

    def __init__(self, client):
        self.client = client
        self._history: dict[tuple[str, str], set] = {}

    def create_run(self, header: Mapping[str, Any], record: Mapping[str, Any]) -> str:
        experiment_id = ensure_experiment(self.client, header["experiment"], header.get("artifact_location"))
        existing = find_run_by_key(self.client, experiment_id, header["run_key"])
        if existing:
            return existing
        run = self.client.create_run(
            experiment_id, start_time=record["start_time"], tags=dict(record["tags"]), run_name=record["run_name"]
        )
        return run.info.run_id

    def metrics(self, run_id: str, points: list, dedupe: bool) -> None:
        from mlflow.entities import Metric

        if dedupe:
            points = [p for p in points if not self._already_logged(run_id, p)]
        for start in range(0, len(points), MAX_METRICS_PER_BATCH):
            chunk = points[start : start + MAX_METRICS_PER_BATCH]
            self.client.log_batch(
                run_id, metrics=[Metric(key, float(value), int(ts), int(step)) for key, value, step, ts in chunk]
            )
            for point in chunk:
                self._known(run_id, point[0]).add(point_identity(point))

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
            self.client.log_batch(run_id, params=items[start : start + MAX_PARAMS_OR_TAGS_PER_BATCH])
        if conflicts:  # MLflow keeps a param's first value: the queued one would be silently lost
            key, value = next(iter(conflicts.items()))
            raise Refused(
                f"param {key} is {clip(logged[key], 80)!r} in the run, the queued record has "
                f"{clip(value, 80)!r} (MLflow never changes a param)"
            )

    def tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, clip(v, MAX_TAG_LENGTH)) for k, v in tags.items()]
        for start in range(0, len(items), MAX_PARAMS_OR_TAGS_PER_BATCH):
            self.client.log_batch(run_id, tags=items[start : start + MAX_PARAMS_OR_TAGS_PER_BATCH])

    def artifact(self, run_id: str, local_path: str, artifact_path: str | None) -> None:
        if Path(local_path).is_dir():
            self.client.log_artifacts(run_id, local_path, artifact_path)
        else:
            self.client.log_artifact(run_id, local_path, artifact_path)

    def inputs(self, run_id: str, datasets: list) -> None:
        from mlflow.entities import Dataset, DatasetInput, InputTag

        self.client.log_inputs(
            run_id,
            [
                DatasetInput(
                    Dataset(
                        name=d["name"],
                        digest=d["digest"],
                        source_type=d["source_type"],
                        source=d["source"],
                        profile=d.get("profile"),
                    ),
                    tags=[InputTag("mlflow.data.context", d["context"])],
                )
                for d in datasets
            ],
        )

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
        self.client.create_model_version(name, source, run_id=run_id, description=description, await_creation_for=0)

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
            raise Refused(
                f"run {run_id} is deleted at {uri}; restore it (mlflow runs restore --run-id "
                f"{run_id}) to send its records"
            )

    def send(self, run_id: str, record: Mapping[str, Any], dedupe: bool) -> None:
        """Place one journal record (any operation but create_run) in run `run_id`."""
        op = record["op"]
        if op == "metrics":
            self.metrics(run_id, record["metrics"], dedupe)
        elif op == "params":
            self.params(run_id, record["params"], dedupe)
        elif op == "tags":
            self.tags(run_id, record["tags"])
        elif op == "artifact":
            self.artifact(run_id, record["local_path"], record.get("artifact_path"))
        elif op == "inputs":
            self.inputs(run_id, record["datasets"])
        elif op == "register_model":
            self.register_model(run_id, record["name"], record["artifact_path"], record.get("description"))
        elif op == "terminate":
            self.terminate(run_id, record["status"], record["end_time"])
        else:
            raise ValueError(f"unknown journal operation {op!r}")

    def _known(self, run_id: str, key: str) -> set:
        if (run_id, key) not in self._history:
            history = self.client.get_metric_history(run_id, key)
            self._history[(run_id, key)] = {point_identity((m.key, m.value, m.step, m.timestamp)) for m in history}
        return self._history[(run_id, key)]

    def _already_logged(self, run_id: str, point) -> bool:
        return point_identity(point) in self._known(run_id, point[0])


def point_identity(point) -> tuple:
    """What makes a metric point (key, value, step, timestamp) the same one MLflow already holds."""
    _, value, step, timestamp = point
    value = float(value)
    return int(step), int(timestamp), "nan" if math.isnan(value) else value
