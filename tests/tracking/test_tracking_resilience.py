"""Training survives a dead tracking server, and `lcp tracking sync` completes the run exactly once."""

import pytest
from mlflow.tracking import MlflowClient
from mmcv.runner import Hook

from helpers.mlflow_server import free_port
from helpers.tracking import make_coco, run_toy_training, toy_config
from lcp.cli import main as lcp
from lcp.tracking import add_tracking
from lcp.tracking.journal import Journal


class ServerControl(Hook):
    """Kills (SIGKILL) or restarts the server right after the given iterations, before they are logged."""

    def __init__(self, server, actions):
        self.server = server
        self.actions = actions

    def after_train_iter(self, runner):
        action = self.actions.get(runner.iter + 1)
        if action == "kill":
            self.server.kill()
        elif action == "start":
            self.server.start()


def tracking_for(cfg, scene, **options):
    # every iteration logged, so that each iteration of an outage is a record to catch up
    hook = add_tracking(cfg, scene=scene, step="train", method="lcp", num_heatmaps=0, interval=1)
    return {**{k: v for k, v in hook.items() if k != "type"}, "flush_secs": 0.0, "retry_secs": 0.0, **options}


def steps_of(client, run_id, key):
    return sorted(m.step for m in client.get_metric_history(run_id, key))


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


def test_server_killed_mid_run_training_completes_and_sync_replays_exactly_once(
    tmp_path, mlflow_server_factory, clean_env, capsys, caplog
):
    server = mlflow_server_factory()
    ann_file = make_coco(tmp_path / "data")
    cfg = toy_config(tmp_path / "data", ann_file)
    tracking = tracking_for(cfg, "toykill", tracking_uri=server.uri)
    work_dir = tmp_path / "work"
    # down at 3..6 (the run catches up by itself when the server is back), down again from 11 to the end
    control = ServerControl(server, {3: "kill", 7: "start", 11: "kill"})
    runner, model = run_toy_training(work_dir, cfg, tracking, epochs=2, iters_per_epoch=8, extra_hooks=[control])
    assert runner.epoch == 2 and len(model.logged) == 16  # training finished despite the dead server

    journals = list((work_dir / "mlflow-pending").glob("*.jsonl"))
    assert len(journals) == 1
    state = Journal(journals[0]).read()
    assert state.run_id and {r["op"] for r in state.pending} >= {"metrics", "terminate"}
    warnings = [r.getMessage() for r in caplog.records if r.name == "lcp.tracking" and r.levelname == "WARNING"]
    assert sum("could not" in message for message in warnings) == 1  # warned once, not per iteration
    assert "lcp tracking sync" in warnings[-1]

    server.start()  # the same backend store, as after a crash of the team server
    client = MlflowClient(server.uri)
    run = client.get_run(state.run_id)
    assert run.info.status == "RUNNING"
    before = steps_of(client, state.run_id, "train/catch_up/loss") + steps_of(client, state.run_id, "train/crux/loss")
    assert set(range(1, 11)) <= set(before) and 16 not in before  # 3..6 were caught up during the run

    assert lcp(["tracking", "sync", str(work_dir)]) == 0
    assert "complete" in capsys.readouterr().out
    expected_loss = [v["loss"] for v in model.logged]
    # epoch 1 trains the catch-up learner, epoch 2 the crux learner: one loss series per mode
    history = sorted(
        client.get_metric_history(state.run_id, "train/catch_up/loss")
        + client.get_metric_history(state.run_id, "train/crux/loss"),
        key=lambda m: m.step,
    )
    assert [m.step for m in history] == list(range(1, 17))  # every iteration, each exactly once
    assert [m.value for m in history] == pytest.approx(expected_loss)
    assert steps_of(client, state.run_id, "train/catch_up/loss") == list(range(1, 9))
    assert steps_of(client, state.run_id, "val/AP") == [1, 2]
    assert steps_of(client, state.run_id, "epoch/crux_learner_mode") == [1, 2]
    run = client.get_run(state.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["lcp.checkpoint"].endswith("epoch_2.pth")
    assert "logs/toy.log.json" in {a.path for a in client.list_artifacts(state.run_id, "logs")}

    # the finished run's journal is gone once sent, with its artifacts' copies (they were never removed)
    assert list((work_dir / "mlflow-pending").iterdir()) == []
    assert lcp(["tracking", "sync", str(work_dir)]) == 0  # nothing left: sends nothing twice
    assert "nothing pending" in capsys.readouterr().out
    assert steps_of(client, state.run_id, "train/crux/loss") == list(range(9, 17))


def test_a_run_back_online_before_its_end_leaves_no_journal(tmp_path, mlflow_server_factory, clean_env):
    server = mlflow_server_factory()
    ann_file = make_coco(tmp_path / "data")
    cfg = toy_config(tmp_path / "data", ann_file)
    work_dir = tmp_path / "work"
    control = ServerControl(server, {2: "kill", 4: "start"})
    run_toy_training(work_dir, cfg, tracking_for(cfg, "toyback", tracking_uri=server.uri), 1, 6, [control])
    assert list((work_dir / "mlflow-pending").iterdir()) == []  # all sent: nothing waits for a sync
    client = MlflowClient(server.uri)
    (run,) = client.search_runs([client.get_experiment_by_name("lcp/toyback").experiment_id])
    assert run.info.status == "FINISHED"
    assert steps_of(client, run.info.run_id, "train/catch_up/loss") == list(range(1, 7))


def test_server_unreachable_from_the_start_defers_the_run_until_sync(tmp_path, mlflow_server, clean_env, capsys):
    ann_file = make_coco(tmp_path / "data")
    cfg = toy_config(tmp_path / "data", ann_file)
    dead = f"http://127.0.0.1:{free_port()}"
    work_dir = tmp_path / "work"
    run_toy_training(work_dir, cfg, tracking_for(cfg, "toydead", tracking_uri=dead), epochs=1, iters_per_epoch=3)
    journal = next((work_dir / "mlflow-pending").glob("*.jsonl"))
    state = Journal(journal).read()
    assert state.run_id is None and state.pending[0]["op"] == "create_run"

    assert lcp(["tracking", "sync", str(work_dir), "--tracking-uri", dead]) == 1  # still down: kept, not lost
    assert Journal(journal).read().pending == state.pending

    client = MlflowClient(mlflow_server.uri)
    for _ in range(2):  # a second sync must not create the run again (the first removed the sent journal)
        assert lcp(["tracking", "sync", str(work_dir), "--tracking-uri", mlflow_server.uri]) == 0
    assert not journal.exists()
    experiment = client.get_experiment_by_name("lcp/toydead")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_name for r in runs] == ["toydead/train/lcp"]
    run_id = runs[0].info.run_id
    assert runs[0].info.status == "FINISHED"
    assert steps_of(client, run_id, "train/catch_up/loss") == [1, 2, 3]
    assert steps_of(client, run_id, "val/AP") == [1]
    assert runs[0].data.params["lr"] == "0.01"


def test_an_evaluation_logged_while_the_server_is_down_leaves_no_scratch_and_sync_sends_its_files(
    tmp_path, mlflow_server, clean_env, monkeypatch
):
    """Its eval.json and config.py are written to a scratch folder; the journal keeps copies, so the
    folder goes (one leaked per evaluation job before) and `lcp tracking sync` still sends both."""
    import tempfile

    from lcp.tracking import log_evaluation

    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    monkeypatch.chdir(tmp_path)  # the second evaluation goes to the default store, results/mlflow
    ann_file = make_coco(tmp_path / "data")
    cfg = toy_config(tmp_path / "data", ann_file)
    dead = f"http://127.0.0.1:{free_port()}"
    metrics = {"bbox_mAP": 0.5, "bbox_mAP_50": 0.7, "bbox_mAP_75": 0.55}
    log_evaluation(metrics, scene="toyeval", method="lcp", config=cfg, work_dir=tmp_path / "work", tracking_uri=dead)
    log_evaluation(metrics, scene="toyeval", method="baseline", work_dir=tmp_path / "work2")
    assert list(scratch_root.iterdir()) == []

    assert lcp(["tracking", "sync", str(tmp_path / "work"), "--tracking-uri", mlflow_server.uri]) == 0
    client = MlflowClient(mlflow_server.uri)
    run = client.search_runs([client.get_experiment_by_name("lcp/toyeval").experiment_id])[0]
    sent = {a.path for folder in ("evaluation", "config") for a in client.list_artifacts(run.info.run_id, folder)}
    assert sent == {"evaluation/eval.json", "config/config.py"}


def test_journal_survives_a_torn_line_from_a_killed_writer(tmp_path):
    journal = Journal(tmp_path / "mlflow-pending" / "key.jsonl")
    journal.write_header({"run_key": "key", "run_id": "r1", "tracking_uri": "http://x", "experiment": "lcp/x"})
    first = journal.add("metrics", metrics=[["train/loss", 1.0, 1, 1000]])
    with open(journal.path, "ab") as file:
        file.write(b'{"id": "abc", "op": "metr')  # the writer died here
    second = journal.add("metrics", metrics=[["train/loss", 0.5, 2, 2000]])
    journal.ack(first, "r1")
    state = journal.read()
    assert state.torn_lines == 1
    assert [r["id"] for r in state.pending] == [second]
    assert state.run_id == "r1"


def test_jobs_starting_at_once_on_a_fresh_sqlite_store_all_log_their_runs(tmp_path, clean_env):
    """MLflow migrates a new sqlite database without a lock: of 6 jobs starting at once on a fresh
    store all 6 runs were lost (exit status 0), and the store could stay half-migrated for good."""
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    job = (
        "import sys; from lcp.tracking import log_evaluation; "
        "log_evaluation({'bbox_mAP': 0.3, 'classwise': {}}, scene='race', method='lcp', variant=f'v{sys.argv[1]}', "
        f"work_dir=sys.argv[2], tracking_uri={uri!r})"
    )
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", job, str(i), str(tmp_path / f"w{i}")], stderr=subprocess.PIPE, text=True
        )
        for i in range(4)
    ]
    errors = [process.communicate()[1] for process in jobs]
    assert all(process.returncode == 0 for process in jobs), errors
    runs = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("lcp/race").experiment_id])
    assert sorted(run.info.run_name for run in runs) == [f"race/evaluate/lcp/v{i}" for i in range(4)], errors


def test_a_locked_sqlite_store_is_a_failure_that_may_pass():
    """sqlalchemy's 'database is locked', raised unwrapped while MLflow opens a store, disabled the
    run for good instead of queueing its records for a later send."""
    from sqlalchemy.exc import OperationalError

    from lcp.tracking.client import is_transient

    assert is_transient(OperationalError("SELECT 1", {}, Exception("database is locked")))
    assert is_transient(OperationalError("INSERT", {}, Exception("database or disk is full")))
    assert not is_transient(OperationalError("SELECT 1", {}, Exception("no such column: x")))


def test_a_database_error_is_told_by_the_databases_own_message():
    """sqlalchemy puts notes before it: the one line said only "(raised as a result of Query-invoked
    autoflush; consider using ...)", never that the disk was full."""
    import sqlite3

    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import OperationalError

    from lcp.tracking.client import short_error

    error = OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))
    error.add_detail("raised as a result of Query-invoked autoflush; consider using a session.no_autoflush block")
    assert short_error(error) == "OperationalError: (OperationalError) database or disk is full"
    try:
        try:
            raise error
        except OperationalError as exc:
            raise MlflowException(str(exc)) from exc
    except MlflowException as wrapped:
        assert short_error(wrapped) == "MlflowException: (OperationalError) database or disk is full"
    assert short_error(ValueError("first line\nsecond")) == "ValueError: first line"


def test_a_store_whose_creation_was_cut_short_is_not_left_half_made(tmp_path, clean_env, monkeypatch):
    """A new sqlite store made in place and cut short (a full disk during MLflow's migrations) stayed
    half-made: every later run failed to open it ("table spans already exists") and was not tracked."""
    import sqlite3

    import mlflow.store.db.utils
    from sqlalchemy.exc import OperationalError

    from lcp.tracking.client import is_transient, make_client

    def disk_full(engine):
        raise OperationalError("ALTER TABLE", {}, sqlite3.OperationalError("database or disk is full"))

    database = tmp_path / "store" / "mlflow.db"
    upgrade = mlflow.store.db.utils._upgrade_db
    monkeypatch.setattr(mlflow.store.db.utils, "_upgrade_db", disk_full)
    with pytest.raises(OperationalError) as failed:
        make_client(f"sqlite:///{database}")
    assert is_transient(failed.value)  # the run's records wait in its journal
    assert not database.exists() and [p.name for p in database.parent.iterdir()] == ["mlflow.db.init-lock"]

    monkeypatch.setattr(mlflow.store.db.utils, "_upgrade_db", upgrade)  # space again
    client = make_client(f"sqlite:///{database}")
    assert [experiment.name for experiment in client.search_experiments()] == ["Default"]
    assert make_client(f"sqlite:///{database}").search_experiments()  # and it opens again


def test_a_refused_run_says_it_is_not_tracked_not_where_its_records_wait(tmp_path, clean_env, monkeypatch):
    # it named a pending journal that was never written
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    from lcp.tracking import run

    def refuse(uri):
        raise MlflowException("no such store", error_code=INVALID_PARAMETER_VALUE)

    monkeypatch.setattr(run, "make_client", refuse)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracked = run.TrackedRun(experiment="lcp/s", run_name="s/evaluate/lcp", work_dir=tmp_path, tracking_uri=uri)
    assert tracked.start().disabled
    assert tracked.where() == f"MLflow run s/evaluate/lcp: not tracked ({uri} refused it; see the warning above)"
    assert not tracked.journal.path.exists()


def test_a_work_dir_without_flock_still_queues_and_syncs_the_records(tmp_path, clean_env, monkeypatch, capsys):
    """On a file system without flock (a Lustre `noflock` or an NFS mount without lockd: ENOLCK),
    the journal's lock failed: a training whose server was down stopped with a traceback at its
    first record, and one tracked to a sqlite store there as well, at the store's init lock."""
    import errno
    import fcntl

    import lcp.io as lcp_io

    def no_flock(file, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    monkeypatch.setattr(lcp_io, "_said_no_flock", False, raising=False)
    ann_file = make_coco(tmp_path / "data")
    cfg = toy_config(tmp_path / "data", ann_file)
    dead = f"http://127.0.0.1:{free_port()}"
    work_dir = tmp_path / "work"
    run_toy_training(work_dir, cfg, tracking_for(cfg, "toynolock", tracking_uri=dead), epochs=1, iters_per_epoch=3)
    (journal,) = (work_dir / "mlflow-pending").glob("*.jsonl")
    assert Journal(journal).read().pending[0]["op"] == "create_run"
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    assert lcp(["tracking", "sync", str(work_dir), "--tracking-uri", uri]) == 0
    assert not journal.exists()
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("lcp/toynolock").experiment_id])
    assert run.info.status == "FINISHED" and steps_of(client, run.info.run_id, "train/catch_up/loss") == [1, 2, 3]
    assert capsys.readouterr().err.count("this file system has no flock") == 1  # said once, not per record


def test_an_artifact_kept_for_a_later_sync_is_on_disk_before_its_record(tmp_path, clean_env, monkeypatch):
    """The journal's record naming an artifact's copy was fsynced, the copy was not: after a crash
    of the node, `lcp tracking sync` (on another node) sent the empty copy as the artifact."""
    import os
    from pathlib import Path

    from lcp.tracking.run import TrackedRun

    synced = []
    fsync = os.fsync

    def recorded_fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    (tmp_path / "eval.json").write_text("{}")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "run.log").write_text("epoch 1")
    dead = f"http://127.0.0.1:{free_port()}"
    run = TrackedRun(experiment="lcp/s", run_name="s/evaluate/lcp", work_dir=tmp_path / "work", tracking_uri=dead)
    run.start()
    run.log_artifact(tmp_path / "eval.json", "evaluation")
    run.log_artifact(tmp_path / "logs", "logs")
    kept = [Path(record["local_path"]) for record in run.journal.read().pending if record["op"] == "artifact"]
    assert [path.name for path in kept] == ["eval.json", "logs"]
    assert str(kept[0]) in synced and str(kept[1] / "run.log") in synced
    assert synced.index(str(kept[1] / "run.log")) < len(synced) - 1  # before the record naming it
