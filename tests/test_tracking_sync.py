"""`lcp tracking sync` never loses a queued record: wrong server, deleted run, killed or concurrent
syncs, a record MLflow refuses, a batch half sent. Each test queues records the way a real run
does (its server dies mid-run) against real `mlflow server`s on 127.0.0.1."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from lcp.cli import main as lcp
from lcp.tracking.journal import Journal
from lcp.tracking.run import TrackedRun
from mlflow_server import free_port

LIVE_STEPS = [1, 2, 3, 4]  # sent while the server is up
QUEUED_STEPS = [5, 6, 7, 8]  # logged after it died: queued in the journal


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "LCP_INVOCATION_ID", "LCP_MLFLOW_PARENT_RUN_IDS",
                 "LCP_SNAKEMAKE_RULE", "LCP_SNAKEMAKE_WILDCARDS"):
        monkeypatch.delenv(name, raising=False)


def tracked_run(scene, work_dir, uri, **options):
    return TrackedRun(experiment=f"lcp/{scene}", run_name=f"{scene}/train/lcp", work_dir=work_dir,
                      tracking_uri=uri, flush_secs=0.0, retry_secs=3600.0, **options).start()


def queue_half_a_run(server, scene, work_dir):
    """A run that logs 4 steps to `server`, which then dies: steps 5..8, a param, a tag and the
    final status are queued. Returns (journal, run id, end time of the queued terminate)."""
    run = tracked_run(scene, work_dir, server.uri)
    assert run.online and run.run_id
    run.log_params({"lr": "0.01"})
    for step in LIVE_STEPS:
        run.log_metrics({"train/loss": 1.0 / step}, step=step, timestamp=1000 + step)
    server.kill()
    for step in QUEUED_STEPS:
        run.log_metrics({"train/loss": 1.0 / step}, step=step, timestamp=1000 + step)
    run.log_params({"momentum": "0.9"})
    run.set_tags({"lcp.checkpoint": "epoch_2.pth"})
    run.finish("FINISHED")
    journal = Journal(run.journal.path)
    state = journal.read()
    assert state.run_id == run.run_id
    assert [r["op"] for r in state.pending] == ["metrics"] * 4 + ["params", "tags", "terminate"]
    return journal, run.run_id, state.pending[-1]["end_time"]


def assert_complete(client, run_id, end_time):
    """The run holds its whole history once, and is FINISHED at the time it really ended."""
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.end_time == end_time
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "train/loss"))
    assert history == [(step, pytest.approx(1.0 / step)) for step in LIVE_STEPS + QUEUED_STEPS]
    assert run.data.params == {"lr": "0.01", "momentum": "0.9"}
    assert run.data.tags["lcp.checkpoint"] == "epoch_2.pth"


def test_sync_to_another_server_keeps_every_record_and_the_right_server_completes_the_run(
        tmp_path, mlflow_server_factory, clean_env, monkeypatch, capsys):
    home, other = mlflow_server_factory(), mlflow_server_factory()
    journal, run_id, end_time = queue_half_a_run(home, "syncwrong", tmp_path / "work")
    queued = journal.read().pending

    assert lcp(["tracking", "sync", str(tmp_path / "work"), "--tracking-uri", other.uri]) == 1
    out, err = capsys.readouterr()
    assert f"run {run_id} does not exist at {other.uri}" in out and f"recorded {home.uri}" in out
    assert "7 kept" in out and "sent 0" in out and "dropped" not in out
    assert "nothing was dropped" in err
    assert journal.read().pending == queued

    # MLFLOW_TRACKING_URI comes before the server the journal recorded (which is up again now)
    home.start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", other.uri)
    assert lcp(["tracking", "sync", str(tmp_path / "work")]) == 1
    assert f"does not exist at {other.uri}" in capsys.readouterr().out
    assert journal.read().pending == queued
    assert MlflowClient(home.uri).get_run(run_id).info.status == "RUNNING"

    # and the flag comes before MLFLOW_TRACKING_URI
    assert lcp(["tracking", "sync", str(tmp_path / "work"), "--tracking-uri", home.uri]) == 0
    assert "sent 7, complete" in capsys.readouterr().out
    assert journal.read().pending == []
    assert_complete(MlflowClient(home.uri), run_id, end_time)
    assert MlflowClient(other.uri).get_experiment_by_name("lcp/syncwrong") is None  # nothing leaked there
