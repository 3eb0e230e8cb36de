"""`lcp tracking sync` never loses a queued record: wrong server, deleted run, killed or concurrent
syncs, a record MLflow refuses, a batch half sent. Each test queues records the way a real run
does (its server dies mid-run) against real `mlflow server`s on 127.0.0.1."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from helpers.mlflow_server import free_port
from lcp.cli import main as lcp
from lcp.tracking.journal import Journal
from lcp.tracking.run import TrackedRun

LIVE_STEPS = [1, 2, 3, 4]  # sent while the server is up
QUEUED_STEPS = [5, 6, 7, 8]  # logged after it died: queued in the journal


@pytest.fixture
def clean_env(monkeypatch):
    for name in (
        "MLFLOW_TRACKING_URI",
        "LCP_INVOCATION_ID",
        "LCP_MLFLOW_PARENT_RUN_IDS",
        "LCP_SNAKEMAKE_RULE",
        "LCP_SNAKEMAKE_WILDCARDS",
    ):
        monkeypatch.delenv(name, raising=False)


def tracked_run(scene, work_dir, uri, **options):
    return TrackedRun(
        experiment=f"lcp/{scene}",
        run_name=f"{scene}/train/lcp",
        work_dir=work_dir,
        tracking_uri=uri,
        flush_secs=0.0,
        retry_secs=3600.0,
        **options,
    ).start()


def queue_half_runs(server, work_root, scenes, **options):
    """Runs that log 4 steps to `server`, which then dies: steps 5..8, a param, a tag and the final
    status are queued in each run's journal. Returns {scene: (journal, run id, queued end time)}."""
    runs = {scene: tracked_run(scene, work_root / scene, server.uri, **options) for scene in scenes}
    for run in runs.values():
        assert run.online and run.run_id
        run.log_params({"lr": "0.01"})
        for step in LIVE_STEPS:
            run.log_metrics({"train/loss": 1.0 / step}, step=step, timestamp=1000 + step)
    server.kill()
    queued = {}
    for scene, run in runs.items():
        for step in QUEUED_STEPS:
            run.log_metrics({"train/loss": 1.0 / step}, step=step, timestamp=1000 + step)
        run.log_params({"momentum": "0.9"})
        run.set_tags({"lcp.checkpoint": "epoch_2.pth"})
        run.finish("FINISHED")
        journal = Journal(run.journal.path)
        state = journal.read()
        assert state.run_id == run.run_id
        assert [r["op"] for r in state.pending] == ["metrics"] * 4 + ["params", "tags", "terminate"]
        queued[scene] = (journal, run.run_id, state.pending[-1]["end_time"])
    return queued


def assert_complete(client, run_id, end_time):
    """The run holds its whole history once, and is FINISHED at the time it really ended."""
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.end_time == end_time
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "train/loss"))
    assert history == [(step, pytest.approx(1.0 / step)) for step in LIVE_STEPS + QUEUED_STEPS]
    assert run.data.params == {"lr": "0.01", "momentum": "0.9"}
    assert run.data.tags["lcp.checkpoint"] == "epoch_2.pth"


def test_sync_to_another_server_keeps_every_record_and_the_right_server_completes_the_run(
    tmp_path, mlflow_server_factory, clean_env, monkeypatch, capsys
):
    home, other = mlflow_server_factory(), mlflow_server_factory()
    journal, run_id, end_time = queue_half_runs(home, tmp_path, ["work"])["work"]
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
    assert MlflowClient(other.uri).get_experiment_by_name("lcp/work") is None  # nothing leaked there


# ---- one server that died with several runs half logged, restarted for the tests below ----------

SCENES = ["syncdeleted", "synckilled", "syncconcurrent"]


@pytest.fixture(scope="module")
def restarted(tmp_path_factory):
    """(server, {scene: (journal, run id, end time)}): the server died mid-run and is back."""
    from helpers.mlflow_server import MlflowServer

    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    root = tmp_path_factory.mktemp("sync")
    server = MlflowServer(root / "server").start()
    try:
        queued = queue_half_runs(server, root, SCENES)
        server.start()
        yield server, queued
    finally:
        server.kill()
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved


def test_a_run_deleted_on_the_server_keeps_its_records_until_it_is_restored(restarted, clean_env, capsys):
    server, queued = restarted
    journal, run_id, end_time = queued["syncdeleted"]
    pending = journal.read().pending
    client = MlflowClient(server.uri)
    client.delete_run(run_id)

    assert lcp(["tracking", "sync", str(journal.path)]) == 1
    assert f"7 kept: run {run_id} is deleted at {server.uri}" in capsys.readouterr().out
    assert journal.read().pending == pending

    client.restore_run(run_id)
    assert lcp(["tracking", "sync", str(journal.path)]) == 0
    assert "sent 7, complete" in capsys.readouterr().out
    assert_complete(client, run_id, end_time)


def forget_acks(journal, before_sync: bytes, torn=b""):
    """The journal as a sync killed after sending but before writing its acks leaves it (a sync
    that completes removes a finished run's journal)."""
    assert not journal.exists()
    lines = before_sync.splitlines(keepends=True)
    journal.path.write_bytes(b"".join(line for line in lines if b'"ack"' not in line) + torn)


def test_a_sync_killed_before_its_acks_sends_nothing_twice(restarted, clean_env, capsys):
    server, queued = restarted
    journal, run_id, end_time = queued["synckilled"]
    client = MlflowClient(server.uri)
    before_sync = journal.path.read_bytes()
    assert lcp(["tracking", "sync", str(journal.path)]) == 0
    assert_complete(client, run_id, end_time)

    forget_acks(journal, before_sync, torn=b'{"ack": "')
    assert len(journal.read().pending) == 7
    assert lcp(["tracking", "sync", str(journal.path)]) == 0
    assert "sent 7, complete" in capsys.readouterr().out
    assert_complete(client, run_id, end_time)  # each point once, still FINISHED at its own end time


def test_a_run_never_created_whose_creation_ack_was_lost_is_not_created_twice(tmp_path, restarted, clean_env, capsys):
    server, _ = restarted
    dead = f"http://127.0.0.1:{free_port()}"
    run = tracked_run("syncnocreate", tmp_path / "work", dead)
    run.log_metrics({"train/loss": 0.5}, step=1)
    run.finish("FINISHED")
    journal = Journal(run.journal.path)
    assert journal.read().run_id is None

    before_sync = journal.path.read_bytes()
    assert lcp(["tracking", "sync", str(journal.path), "--tracking-uri", server.uri]) == 0
    forget_acks(journal, before_sync)
    assert lcp(["tracking", "sync", str(journal.path), "--tracking-uri", server.uri]) == 0
    client = MlflowClient(server.uri)
    runs = client.search_runs([client.get_experiment_by_name("lcp/syncnocreate").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "train/loss")] == [1]


def test_a_run_synced_to_another_store_keeps_its_artifacts_where_that_store_does(tmp_path, restarted, clean_env):
    """The journal's artifact location is a folder of the store it recorded (here one that
    cannot exist): sync --tracking-uri to a server made the server's new experiment point at
    it, so every artifact failed, or went to the syncing machine's disk."""
    server, _ = restarted
    run = tracked_run("syncelsewhere", tmp_path / "work", "sqlite:////proc/nope/mlflow.db")
    assert not run.online
    run.log_artifact(write_text_file(tmp_path / "note.txt", "kept"), "notes")
    run.finish("FINISHED")
    journal = Journal(run.journal.path)
    assert journal.read().header["artifact_location"] == "file:///proc/nope/artifacts"

    assert lcp(["tracking", "sync", str(journal.path), "--tracking-uri", server.uri]) == 0
    client = MlflowClient(server.uri)
    experiment = client.get_experiment_by_name("lcp/syncelsewhere")
    assert "/proc/nope" not in experiment.artifact_location
    (placed,) = client.search_runs([experiment.experiment_id])
    assert [a.path for a in client.list_artifacts(placed.info.run_id, "notes")] == ["notes/note.txt"]


def write_text_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_two_syncs_at_once_send_each_record_once(restarted, clean_env):
    server, queued = restarted
    journal, run_id, end_time = queued["syncconcurrent"]
    command = [str(Path(sys.executable).parent / "lcp"), "tracking", "sync", str(journal.path)]
    syncs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [sync.communicate(timeout=120) for sync in syncs]
    assert [sync.returncode for sync in syncs] == [0, 0], outputs
    sent = sorted(int(out.split("sent ")[1].split(",")[0]) for out, _ in outputs)
    assert sent == [0, 7]
    assert_complete(MlflowClient(server.uri), run_id, end_time)


def test_a_batch_half_sent_before_the_sync_died_is_completed_without_duplicates(tmp_path, restarted, clean_env, capsys):
    server, _ = restarted
    dead = f"http://127.0.0.1:{free_port()}"
    client = MlflowClient(server.uri)
    experiment = client.create_experiment("lcp/syncbatch")
    run_id = client.create_run(experiment, tags={"lcp.run_key": "syncbatch-key"}).info.run_id
    # a run whose server is unreachable buffers 2500 points into one record (3 batches of 1000)
    run = TrackedRun(
        experiment="lcp/syncbatch",
        run_name="syncbatch/train/lcp",
        work_dir=tmp_path / "work",
        tracking_uri=dead,
        run_id=run_id,
        tags={"lcp.run_key": "syncbatch-key"},
        flush_secs=3600.0,
        retry_secs=3600.0,
        max_buffer=10_000,
    ).start()
    points = [("train/loss", 1.0 / step, step, 5000 + step) for step in range(1, 2501)]
    for key, value, step, timestamp in points:
        run.log_metrics({key: value}, step=step, timestamp=timestamp)
    run.finish("FINISHED")
    journal = Journal(run.journal.path)
    assert [len(r.get("metrics", ())) for r in journal.read().pending] == [2500, 0]
    # the first batch reached the server before that sync died
    client.log_batch(run_id, metrics=[Metric(k, v, ts, s) for k, v, s, ts in points[:1000]])

    assert lcp(["tracking", "sync", str(journal.path), "--tracking-uri", server.uri]) == 0
    history = client.get_metric_history(run_id, "train/loss")
    assert sorted(m.step for m in history) == list(range(1, 2501))
    assert client.get_run(run_id).info.status == "FINISHED"


def test_a_record_mlflow_refuses_stays_queued_with_its_reason_and_the_rest_is_placed(
    tmp_path, mlflow_server, clean_env, capsys
):
    run = tracked_run("syncrefused", tmp_path / "work", mlflow_server.uri)
    run.log_params({"lr": "0.01"})
    run.log_params({"lr": "0.02", "warmup": "5"})  # MLflow never changes a param: refused live, kept
    run.log_metrics({"train/loss": 0.5}, step=1)
    run.finish("FINISHED")
    journal = Journal(run.journal.path)
    [kept] = journal.read().pending
    assert kept["params"] == {"lr": "0.02", "warmup": "5"}

    for _ in range(2):  # refused again, and still not dropped
        assert lcp(["tracking", "sync", str(journal.path)]) == 1
        out = capsys.readouterr().out
        assert "1 kept: params: param lr is '0.01' in the run, the queued record has '0.02'" in out
        assert journal.read().pending == [kept]
    client = MlflowClient(mlflow_server.uri)
    finished = client.get_run(run.run_id)
    assert finished.info.status == "FINISHED" and finished.data.metrics["train/loss"] == 0.5
    assert finished.data.params["lr"] == "0.01"


def test_bad_journals_are_one_line_each_and_left_as_they_are(tmp_path, clean_env, capsys):
    pending = tmp_path / "work" / "mlflow-pending"
    pending.mkdir(parents=True)
    headless = pending / "headless.jsonl"
    headless.write_text(json.dumps({"id": "a", "op": "metrics", "metrics": [["x", 1.0, 1, 1]]}) + "\n")
    nowhere = Journal(pending / "nowhere.jsonl")
    nowhere.write_header({"run_key": "k", "run_id": "r1", "experiment": "lcp/x"})
    nowhere.add("metrics", metrics=[["x", 1.0, 1, 1]])
    before = {path: path.read_bytes() for path in pending.iterdir()}

    assert lcp(["tracking", "sync", str(tmp_path / "work")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[0].endswith("1 kept: " + f"{headless}: pending journal without its header line (which run?)")
    assert out[1].endswith("1 kept: the journal records no tracking URI; name one with --tracking-uri")
    assert {path: path.read_bytes() for path in pending.iterdir() if path.suffix == ".jsonl"} == {
        path: data for path, data in before.items()
    }

    for path, message in [
        (tmp_path / "missing", "no such file or folder"),
        (tmp_path / "notes.txt", "not a pending journal"),
    ]:
        if path.suffix:
            path.write_text("x")
        assert lcp(["tracking", "sync", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def test_a_resumed_training_that_starts_online_sends_what_its_first_attempt_queued(mlflow_server_factory, clean_env):
    """Only an offline run replayed its journal: a first attempt that ran with the server down
    and a retry that found it up left the first attempt's run creation, params and points
    queued, without a word."""
    server = mlflow_server_factory()
    server.kill()
    first = tracked_run("syncretry", server.root / "work", server.uri)
    assert not first.online
    first.log_params({"lr": "0.01"})
    first.log_metrics({"train/loss": 1.0}, step=1)
    first.flush()  # killed here: no finish
    server.start()
    retry = tracked_run("syncretry", server.root / "work", server.uri, tags={"lcp.run_key": first.run_key})
    assert retry.online
    retry.log_metrics({"train/loss": 0.5}, step=2)
    retry.finish("FINISHED")
    client = MlflowClient(server.uri)
    (run,) = client.search_runs([client.get_experiment_by_name("lcp/syncretry").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params == {"lr": "0.01"}
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1, 2]
    assert Journal(first.journal.path).read().pending == []


def test_a_training_resuming_a_run_deleted_in_the_ui_logs_to_a_new_run(tmp_path, mlflow_server, clean_env):
    """Resuming into a deleted run disabled tracking: the rest of the training was dropped."""
    first = tracked_run("syncdeleted", tmp_path / "work", mlflow_server.uri)
    first.log_metrics({"train/loss": 1.0}, step=1)
    first.flush()
    client = MlflowClient(mlflow_server.uri)
    client.delete_run(first.run_id)
    resumed = tracked_run(
        "syncdeleted", tmp_path / "work", mlflow_server.uri, run_id=first.run_id, tags={"lcp.run_key": first.run_key}
    )
    assert resumed.online and not resumed.disabled and resumed.replaced == first.run_id
    resumed.log_metrics({"train/loss": 0.5}, step=2)
    resumed.finish("FINISHED")
    (run,) = client.search_runs([client.get_experiment_by_name("lcp/syncdeleted").experiment_id])
    assert run.info.run_id != first.run_id and run.info.status == "FINISHED"
    assert run.data.tags["lcp.replaces_run"] == first.run_id
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [2]


@pytest.mark.parametrize("sync_first_attempt", [False, True])
def test_a_sync_while_a_retried_run_goes_on_loses_nothing(tmp_path, restarted, clean_env, sync_first_attempt):
    """A sync removes a finished run's journal. A retried training goes on with the same run key, offline:
    the sync took the failed attempt's final status for the run's end, removed the journal, and the retry's
    next records went into one without its header line, which nothing could send; the run stayed FAILED."""
    from lcp.tracking import settings
    from lcp.tracking.replay import replay

    server, _ = restarted
    dead = f"http://127.0.0.1:{free_port()}"
    scene = f"syncretry{int(sync_first_attempt)}"  # the server is the module's
    tags = {settings.TAG_RUN_KEY: scene}
    first = tracked_run(scene, tmp_path / "work", dead, tags=tags)
    first.log_params({"lr": 0.02})
    first.finish("FAILED")
    if sync_first_attempt:
        assert replay(first.journal, server.uri).remaining == 0 and not first.journal.exists()  # sent: removed

    second = tracked_run(scene, tmp_path / "work", dead, tags=tags)  # the retry, still offline
    second.log_metrics({"train/loss": 1.0}, step=1)
    second.flush()
    assert replay(second.journal, server.uri).remaining == 0 and second.journal.exists()  # it goes on: kept
    second.log_metrics({"train/loss": 0.5}, step=2)
    second.finish("FINISHED")
    assert replay(second.journal, server.uri).remaining == 0 and not second.journal.exists()

    client = MlflowClient(server.uri)
    (run,) = client.search_runs([client.get_experiment_by_name(f"lcp/{scene}").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["lr"] == "0.02"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1, 2]


def test_a_sync_after_another_removed_the_journal_leaves_no_lock(tmp_path):
    """Two syncs of a finished journal: the second re-made the lock file and left it for good."""
    from lcp.tracking.replay import replay

    journal = Journal(tmp_path / "mlflow-pending" / "k.jsonl")
    journal.write_header({"run_key": "k", "run_id": "r1", "tracking_uri": "http://x", "experiment": "lcp/x"})
    journal.ack(journal.add("terminate", status="FINISHED", end_time=1), "r1")
    with journal.exclusive():
        assert journal.remove_if_done()
    assert replay(Journal(journal.path)).remaining == 0  # what the second sync does
    assert list((tmp_path / "mlflow-pending").iterdir()) == []
