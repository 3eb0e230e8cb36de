"""`lcp train`, `lcp compare` and `lcp tracking` as a user runs them outside the workflow: a tracked
training from a folder other than the checkout, without --work-dir, evaluated with `lcp test --track`
into a local store; the filters of `lcp compare` on that store; `lcp tracking log-artifacts` while
the server is down, then `lcp tracking sync` and `lcp tracking uri` against a real server."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mlflow.tracking import MlflowClient

from helpers.mlflow_server import MlflowServer, free_port
from lcp.cli import main as lcp

PLAIN_TINY = str(Path(__file__).resolve().parents[2] / "config" / "mmdet" / "cascade_rcnn_tiny_demo.py")
SCENE = "usercli"
WORKFLOW_ENV = (
    "MLFLOW_TRACKING_URI",
    "LCP_SEED",
    "LCP_INVOCATION_ID",
    "LCP_MLFLOW_PARENT_RUN_IDS",
    "LCP_SNAKEMAKE_RULE",
    "LCP_SNAKEMAKE_WILDCARDS",
)


@contextlib.contextmanager
def user_shell(folder: Path | None = None):
    """A user's fresh command: none of the workflow's variables (nor those an earlier command in
    this process set, like `lcp train`'s LCP_SEED), in `folder` when given."""
    saved, cwd = dict(os.environ), os.getcwd()
    for name in WORKFLOW_ENV:
        os.environ.pop(name, None)
    if folder is not None:
        os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("user")
    store = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    options = ["--cfg-options", f"data_root={root / 'demo'}/", "data.workers_per_gpu=0", "runner.max_epochs=1"]
    tracking = ["--tracking-uri", store, "--scene", SCENE]
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    with user_shell():
        assert lcp(["data", "demo", "--out", str(root / "demo"), "--num-images", "3", "--no-progress"]) == 0
    with user_shell(elsewhere):
        train = ["train", PLAIN_TINY, "--seed", "0", "--deterministic", "--no-validate"]
        assert lcp([*train, *tracking, *options]) == 0
    work_dir = elsewhere / "work_dirs" / "cascade_rcnn_tiny_demo"
    with user_shell():
        evaluate = ["test", PLAIN_TINY, str(work_dir / "latest.pth"), "--eval-out", str(root / "eval.json")]
        assert lcp([*evaluate, *tracking, *options]) == 0
    return SimpleNamespace(root=root, store=store, work_dir=work_dir)


def runs_of(store: str, step: str):
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name(f"lcp/{SCENE}")
    return client.search_runs([experiment.experiment_id], f"tags.`lcp.step` = '{step}'")


def test_train_without_work_dir_writes_in_the_current_folder_and_records_deterministic(user_run):
    # README: `--work-dir` defaults to work_dirs/<config name>/, in the folder the command runs in
    assert sorted(p.name for p in user_run.work_dir.glob("*.pth")) == ["epoch_1.pth", "latest.pth"]
    assert json.loads((user_run.work_dir / "lcp-train-request.json").read_text())["deterministic"] is True
    meta = torch.load(user_run.work_dir / "epoch_1.pth", map_location="cpu", weights_only=False)["meta"]
    assert meta["deterministic"] is True
    (training,) = runs_of(user_run.store, "train")
    assert training.data.params["deterministic"] == "True"
    assert training.data.params["seed"] == "0"
    assert training.data.tags["lcp.work_dir"] == str(user_run.work_dir.resolve())


def test_compare_since_selects_the_runs_started_after_it(user_run, capsys):
    an_hour_ago = (dt.datetime.now() - dt.timedelta(hours=1)).isoformat(timespec="seconds")
    out_dir = user_run.root / "compare"
    command = ["compare", "--tracking-uri", user_run.store, "--out-dir", str(out_dir)]
    assert lcp([*command, "--since", an_hour_ago, "--tag", "lcp.method=baseline"]) == 0
    assert f"| {SCENE} | baseline |" in capsys.readouterr().out
    assert (out_dir / "compare.csv").is_file()

    # filters that match nothing say which: a value with a stray '=', a time after every run
    assert lcp([*command, "--tag", "lcp.method==baseline"]) == 2
    assert "no evaluation runs match" in (err := capsys.readouterr().err) and "tag lcp.method='=baseline'" in err
    assert lcp([*command, "--since", "9999-12-31T00:00+00:00"]) == 2
    assert "started since 9999-12-31 00:00:00 UTC" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "refused"),
    [
        (["--days", "0"], "--days 0.0: must be a positive number of days"),
        (["--days", "nan"], "--days nan: must be a positive number of days"),
        (["--days", "inf"], "--days inf: reaches back before year 1"),
        (["--days", "1e9"], "--days 1000000000.0: reaches back before year 1"),
        (["--since", "0001-01-01"], "--since '0001-01-01': too early a date"),
        (["--tag", "lcp.method"], "--tag 'lcp.method': expected KEY=VALUE"),
        (["--tag", "=baseline"], "--tag '=baseline': expected KEY=VALUE"),
        (
            ["--tag", "tags.lcp.method=baseline"],
            "--tag 'tags.lcp.method=baseline': give the tag's plain key, --tag lcp.method=baseline",
        ),
        (["--tag", "tags.`lcp.seed`=1"], "--tag 'tags.`lcp.seed`=1': give the tag's plain key, --tag lcp.seed=1"),
        (["--tag", "params.lr=0.02"], "--tag 'params.lr=0.02': --tag filters tags by their plain key"),
    ],
)
def test_compare_refuses_a_filter_in_one_line_writing_nothing(user_run, capsys, option, refused):
    out_dir = user_run.root / "refused"
    assert lcp(["compare", "--tracking-uri", user_run.store, "--out-dir", str(out_dir), *option]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith(f"lcp compare: error: {refused}")
    assert captured.out == "" and not out_dir.exists()


def test_log_artifacts_while_the_server_is_down_then_sync_and_uri(tmp_path, capsys):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    (tmp_path / "summary.md").write_text("# report\n")
    (tmp_path / "check.json").write_text('{"ok": true}\n')
    arguments = [str(tmp_path / "summary.md"), str(tmp_path / "check.json"), "--scene", SCENE, "--step", "report"]
    with user_shell():
        assert lcp(["tracking", "log-artifacts", *arguments, "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    (journal,) = (tmp_path / "mlflow-pending").glob("*.jsonl")
    assert out == f"2 file(s) queued for run {SCENE}/report/all in {journal} (see lcp tracking sync)\n"

    server = MlflowServer(tmp_path / "server", port=port)
    try:
        server.start()
        with user_shell():
            assert lcp(["tracking", "sync", str(tmp_path)]) == 0
            assert f"{journal}: run " in (out := capsys.readouterr().out) and "complete" in out
            assert not list((tmp_path / "mlflow-pending").glob("*.jsonl"))
            assert lcp(["tracking", "sync", str(tmp_path)]) == 0
            assert capsys.readouterr().out == "lcp tracking sync: nothing pending\n"
            client = MlflowClient(uri)
            (run,) = client.search_runs([client.get_experiment_by_name(f"lcp/{SCENE}").experiment_id])
            assert run.info.status == "FINISHED" and run.info.run_name == f"{SCENE}/report/all"
            assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == ["check.json", "summary.md"]

            assert lcp(["tracking", "uri", "--tracking-uri", uri]) == 0
            captured = capsys.readouterr()
            assert captured.out == f"{uri}\n" and captured.err == f"browse: open {uri} in a browser\n"
            server.kill()
            assert lcp(["tracking", "uri", "--tracking-uri", uri]) == 0
            captured = capsys.readouterr()
            assert captured.out == f"{uri}\n" and "not reachable now (" in captured.err
            # a scheme typo is refused, as a tracked run refuses it, instead of a browse line for it
            assert lcp(["tracking", "uri", "--tracking-uri", f"htp://127.0.0.1:{port}"]) == 2
            captured = capsys.readouterr()
            assert captured.out == "" and captured.err.splitlines() == [
                f"lcp tracking: error: tracking URI htp://127.0.0.1:{port}: MLflow has no store for 'htp:'; "
                "use sqlite:///PATH/mlflow.db or http://HOST:PORT (or mssql, mysql, postgresql, sqlite)"
            ]
    finally:
        server.kill()
