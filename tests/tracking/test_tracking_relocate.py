"""`lcp tracking relocate`: a local MLflow store moved or copied elsewhere shows its artifacts again.

A real store made by `lcp tracking log-artifacts` (run and artifact) and the MLflow client (a
registered model version and a logged model) in a checkout under tmp; the whole checkout is then
moved, as a results/ folder copied off a cluster would be.
"""

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException

from helpers.tracking import make_coco, run_toy_training, toy_config
from helpers.unprivileged import run_lcp
from helpers.workflow import prepare_workdir, repo_config, snakemake
from lcp.cli import main as lcp
from lcp.tracking import add_tracking
from lcp.tracking.api import log_evaluation
from lcp.tracking.relocate import LOCATION_COLUMNS, PATH_TAGS

PAYLOAD = b"AP table of a run that moved\n"


def locations(database):
    """Every artifact location the database holds, per table.column."""
    found = {}
    with sqlite3.connect(database) as connection:
        for table, column, condition in LOCATION_COLUMNS:
            where = f'"{column}" IS NOT NULL' + (f" AND {condition}" if condition else "")
            query = f'SELECT "{column}" FROM "{table}" WHERE {where}'
            found[f"{table}.{column}"] = sorted(value for (value,) in connection.execute(query))
    return found


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def moved_store(tmp_path, monkeypatch, capsys):
    """A checkout with a store at results/mlflow, moved from cluster/ to laptop/ after logging."""
    for name in ("MLFLOW_TRACKING_URI", "LCP_INVOCATION_ID", "LCP_MLFLOW_PARENT_RUN_IDS", "LCP_REGISTER_MODEL"):
        monkeypatch.delenv(name, raising=False)
    checkout = tmp_path / "cluster" / "lcp"
    (checkout / ".git").mkdir(parents=True)
    monkeypatch.chdir(checkout)
    (checkout / "table.md").write_bytes(PAYLOAD)
    assert lcp(["tracking", "log-artifacts", "table.md", "--scene", "demo", "--step", "report"]) == 0
    run_id = capsys.readouterr().out.split()[-1]
    database = checkout / "results" / "mlflow" / "mlflow.db"
    client = MlflowClient(f"sqlite:///{database}")
    run = client.get_run(run_id)
    client.create_registered_model("lcp-demo-all")
    client.create_model_version(
        "lcp-demo-all", f"{run.info.artifact_uri}/table.md", run_id=run_id, await_creation_for=0
    )
    client.create_logged_model(run.info.experiment_id, name="detector", source_run_id=run_id)

    old_store = database.parent
    assert all(uri.startswith(old_store.as_uri() + "/artifacts/") for uri in locations(database)["runs.artifact_uri"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "laptop").mkdir()
    moved = tmp_path / "laptop" / "lcp"
    shutil.move(checkout, moved)
    monkeypatch.chdir(moved)
    return moved / "results" / "mlflow" / "mlflow.db", old_store, run_id


def test_relocate_makes_a_moved_stores_artifacts_downloadable_again(moved_store, tmp_path, capsys):
    database, old_store, run_id = moved_store
    client = MlflowClient(f"sqlite:///{database}")
    assert client.list_artifacts(run_id) == []
    with pytest.raises((OSError, MlflowException)):
        client.download_artifacts(run_id, "table.md", str(tmp_path))

    assert lcp(["tracking", "uri"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {database}: this store was moved or copied from {old_store};" in err

    assert lcp(["tracking", "relocate"]) == 0
    out = capsys.readouterr().out
    assert f"{database}: artifact locations moved from {old_store} to {database.parent}" in out
    for column in (
        "experiments.artifact_location",
        "runs.artifact_uri",
        "model_versions.source",
        "model_versions.storage_location",
        "logged_models.artifact_location",
    ):
        assert f"  {column}: " in out
    assert not database.with_name("mlflow.db.before-relocate").exists()

    assert [f.path for f in client.list_artifacts(run_id)] == ["table.md"]
    downloaded = tmp_path / "download"
    downloaded.mkdir()
    assert Path(client.download_artifacts(run_id, "table.md", str(downloaded))).read_bytes() == PAYLOAD
    version_uri = client.get_model_version_download_uri("lcp-demo-all", "1")
    assert version_uri.startswith(database.parent.as_uri() + "/artifacts/")
    assert Path(download_artifacts(artifact_uri=version_uri, dst_path=str(downloaded / "v1"))).read_bytes() == PAYLOAD
    (logged_model,) = client.search_logged_models([client.get_run(run_id).info.experiment_id])
    assert logged_model.artifact_location.startswith(database.parent.as_uri() + "/artifacts/")
    assert not any(str(old_store) in value for values in locations(database).values() for value in values)

    before = digest(database)
    assert lcp(["tracking", "relocate", str(database.parent)]) == 0
    assert "nothing to change" in capsys.readouterr().out
    assert digest(database) == before
    assert lcp(["tracking", "uri"]) == 0
    assert "warning" not in capsys.readouterr().err


def path_tags(database):
    """(run name, tag) -> value of every tag lcp records a path in."""
    with sqlite3.connect(database) as connection:
        query = (
            "SELECT runs.name, tags.key, tags.value FROM tags JOIN runs ON runs.run_uuid = tags.run_uuid "
            f"WHERE tags.key IN ({', '.join('?' * len(PATH_TAGS))})"
        )
        return {(name, key): value for name, key, value in connection.execute(query, PATH_TAGS)}


@pytest.fixture
def moved_runs(tmp_path, monkeypatch, capsys):
    """A checkout whose store at results/mlflow holds a real (toy) training, with its work dir in
    results/demo/lcp/work, and two evaluations: of its final checkpoint, and of an epoch's
    checkpoint removed before the move; the checkout then moved from cluster/ to laptop/."""
    for name in ("MLFLOW_TRACKING_URI", "LCP_INVOCATION_ID", "LCP_MLFLOW_PARENT_RUN_IDS", "LCP_REGISTER_MODEL"):
        monkeypatch.delenv(name, raising=False)
    checkout = tmp_path / "cluster" / "lcp"
    (checkout / ".git").mkdir(parents=True)
    monkeypatch.chdir(checkout)
    config_file = checkout / "config" / "toy.py"
    config_file.parent.mkdir()
    config_file.write_text("# the toy's config\n")
    cfg = toy_config(checkout / "data", make_coco(checkout / "data"))
    hook = add_tracking(cfg, scene="demo", step="train", method="lcp", num_heatmaps=0, config_file=str(config_file))
    work_dir = checkout / "results" / "demo" / "lcp" / "work"
    run_toy_training(work_dir, cfg, {k: v for k, v in hook.items() if k != "type"}, epochs=2, iters_per_epoch=2)
    metrics = {"bbox_mAP": 0.5, "classwise": {}}
    log_evaluation(metrics, scene="demo", method="lcp", checkpoint=str(work_dir / "epoch_2.pth"), work_dir=work_dir)
    log_evaluation(metrics, scene="demo", method="lcp", variant="epoch1", checkpoint=str(work_dir / "epoch_1.pth"))
    (work_dir / "epoch_1.pth").unlink()
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "laptop").mkdir()
    moved = tmp_path / "laptop" / "lcp"
    shutil.move(checkout, moved)
    monkeypatch.chdir(moved)
    return moved / "results" / "mlflow" / "mlflow.db", checkout


def test_relocate_points_the_runs_path_tags_at_the_files_moved_with_the_store(moved_runs, capsys):
    """The runs' lcp.work_dir, lcp.checkpoint and lcp.config_file kept naming the old place: a
    moved results/ folder's runs pointed at files no longer there, and a retraining in the new
    place was not recognised as the same model's (lcp compare matches them by these paths)."""
    database, old_checkout = moved_runs
    new_checkout = database.parents[2]
    work = "results/demo/lcp/work"
    before = path_tags(database)
    assert before == {
        ("demo/train/lcp", "lcp.work_dir"): f"{old_checkout}/{work}",
        ("demo/train/lcp", "lcp.checkpoint"): f"{old_checkout}/{work}/epoch_2.pth",
        ("demo/train/lcp", "lcp.config_file"): f"{old_checkout}/config/toy.py",
        ("demo/evaluate/lcp", "lcp.checkpoint"): f"{old_checkout}/{work}/epoch_2.pth",
        ("demo/evaluate/lcp/epoch1", "lcp.checkpoint"): f"{old_checkout}/{work}/epoch_1.pth",
    }

    assert lcp(["tracking", "relocate"]) == 0
    out = capsys.readouterr().out
    assert f"{database}: artifact locations moved from {old_checkout}/results/mlflow to {database.parent}" in out
    for key, rows in (("lcp.work_dir", 1), ("lcp.checkpoint", 2), ("lcp.config_file", 1)):
        assert f"  tags {key}: {rows} row(s)\n" in out
    assert (
        f"{database}: 1 path tag(s) kept as they are, not found in the new place, e.g. lcp.checkpoint "
        f"{old_checkout}/{work}/epoch_1.pth (not at {new_checkout}/{work}/epoch_1.pth)"
    ) in out
    after = path_tags(database)
    assert after == {
        **{run_tag: value.replace(str(old_checkout), str(new_checkout)) for run_tag, value in before.items()},
        ("demo/evaluate/lcp/epoch1", "lcp.checkpoint"): f"{old_checkout}/{work}/epoch_1.pth",
    }
    assert all(Path(value).exists() for run_tag, value in after.items() if "epoch1" not in run_tag[0])

    before = digest(database)
    assert lcp(["tracking", "relocate"]) == 0
    assert "nothing to change" in capsys.readouterr().out
    assert digest(database) == before


def test_a_store_relocated_without_its_path_tags_is_told_to_give_the_old_folder(moved_runs, capsys):
    """An lcp before path tags moved rewrote only the artifact locations: relocate then finds no old folder
    to move the tags from, and its "nothing to change" said only "if its folder was renamed"."""
    database, old_checkout = moved_runs
    before = path_tags(database)
    assert lcp(["tracking", "relocate"]) == 0
    with sqlite3.connect(database) as connection:  # the tags as the earlier lcp left them
        for (name, key), value in before.items():
            connection.execute(
                "UPDATE tags SET value = ? WHERE key = ? AND run_uuid IN (SELECT run_uuid FROM runs WHERE name = ?)",
                (value, key, name),
            )
    capsys.readouterr()
    assert lcp(["tracking", "relocate"]) == 0
    assert capsys.readouterr().out.startswith(
        f"{database}: nothing to change, no artifact location points into an earlier place of this store (if its "
        "folder was renamed when it moved, or an earlier lcp relocated its artifact locations but not its runs' "
        "path tags, pass --from OLD_FOLDER)"
    )
    assert path_tags(database) == before
    assert lcp(["tracking", "relocate", "--from", str(old_checkout / "results" / "mlflow")]) == 0
    out = capsys.readouterr().out
    assert f"{database}: the runs' path tags moved from {old_checkout}/results/mlflow to {database.parent}" in out
    new_checkout = database.parents[2]
    assert path_tags(database)[("demo/train/lcp", "lcp.work_dir")] == f"{new_checkout}/results/demo/lcp/work"


def test_path_tags_into_a_folder_the_user_may_not_enter_are_kept_as_they_are(moved_runs):
    """Their files could not be looked for, and relocate refused the whole store with exists()'s
    "Permission denied" for the folder, not saying what it wanted there."""
    database, old_checkout = moved_runs
    new_checkout = database.parents[2]
    closed = new_checkout / "results" / "demo" / "lcp"
    work = "results/demo/lcp/work"
    closed.chmod(0)
    try:
        result = run_lcp("tracking", "relocate", cwd=new_checkout)
    finally:
        closed.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert (
        f"{database}: 3 path tag(s) kept as they are, not found in the new place, e.g. lcp.work_dir "
        f"{old_checkout}/{work} (not at {new_checkout}/{work})"
    ) in result.stdout
    tags = path_tags(database)
    assert tags[("demo/train/lcp", "lcp.work_dir")] == f"{old_checkout}/{work}"
    assert tags[("demo/train/lcp", "lcp.config_file")] == f"{new_checkout}/config/toy.py"


def test_a_failing_relocate_leaves_the_path_tags_too(moved_runs, capsys):
    database, old_checkout = moved_runs
    with sqlite3.connect(database) as connection:  # tags are rewritten after every artifact location
        connection.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON tags BEGIN SELECT RAISE(ABORT, 'tags are read-only'); END"
        )
    before = path_tags(database), locations(database)
    assert lcp(["tracking", "relocate"]) == 2
    assert "(tags are read-only); nothing was changed" in capsys.readouterr().err
    assert (path_tags(database), locations(database)) == before
    assert not database.with_name("mlflow.db.before-relocate").exists()


def test_a_store_renamed_in_the_move_is_relocated_from_the_folder_given(moved_store, capsys):
    database, old_store, run_id = moved_store
    renamed = database.parent.with_name("mlflow-from-cluster")
    database.parent.rename(renamed)
    database = renamed / "mlflow.db"

    assert lcp(["tracking", "relocate", str(renamed)]) == 0
    assert "nothing to change" in capsys.readouterr().out
    assert lcp(["tracking", "relocate", str(renamed), "--from", str(old_store)]) == 0
    assert f"artifact locations moved from {old_store} to {renamed}" in capsys.readouterr().out
    client = MlflowClient(f"sqlite:///{database}")
    assert [f.path for f in client.list_artifacts(run_id)] == ["table.md"]


def test_a_failing_relocate_changes_nothing(moved_store, capsys):
    database, _, _ = moved_store
    # model versions are rewritten after experiments and runs: their updates must be rolled back too
    with sqlite3.connect(database) as connection:
        connection.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON model_versions "
            "BEGIN SELECT RAISE(ABORT, 'model versions are read-only'); END"
        )
    before = locations(database)

    assert lcp(["tracking", "relocate", f"sqlite:///{database}"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"lcp tracking: error: {database}: could not rewrite the artifact locations (model versions "
        "are read-only); nothing was changed\n"
    )
    assert locations(database) == before
    assert not database.with_name("mlflow.db.before-relocate").exists()

    with sqlite3.connect(database) as connection:
        connection.execute("DROP TRIGGER refuse")
    assert lcp(["tracking", "relocate", str(database)]) == 0
    assert locations(database) != before


def test_relocate_waits_for_no_other_writer_and_changes_nothing(moved_store, capsys):
    database, _, _ = moved_store
    before = locations(database)
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # what a running mlflow server or job holds while it writes
    try:
        assert lcp(["tracking", "relocate"]) == 2
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert capsys.readouterr().err == (
        f"lcp tracking: error: {database}: in use by another writer (an mlflow "
        "server, or a running job); stop it and run lcp tracking relocate again; "
        "nothing was changed\n"
    )
    assert locations(database) == before


@pytest.mark.parametrize("how", ["argument", "env"])
def test_relocate_refuses_a_tracking_server_in_one_line(how, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["tracking", "relocate"]
    if how == "argument":
        args.append("http://127.0.0.1:5000")
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert lcp(args) == 2
    assert capsys.readouterr().err == (
        "lcp tracking: error: http://127.0.0.1:5000: relocate rewrites a local "
        "sqlite store (sqlite:///PATH/mlflow.db); for a tracking server, stop it "
        "and relocate its own sqlite database\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_relocate_of_a_folder_without_a_store_says_how_to_name_one(tmp_path, capsys):
    """relocate takes the store as its argument: it has no --tracking-uri to point to."""
    assert lcp(["tracking", "relocate", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "no MLflow store here" in err and "(name the store's folder or its mlflow.db)" in err, err
    assert not (tmp_path / "nowhere").exists()


def test_the_workflow_warns_before_logging_into_a_moved_store_until_it_is_relocated(moved_store, capsys):
    """A results/ folder copied into another checkout sent its new runs' artifacts to the old
    checkout's folder, silently: the workflow called no check before logging."""
    from lcp.workflow.tracking import moved_store_warning

    database, old_store, _ = moved_store
    uri = f"sqlite:///{database}"
    assert moved_store_warning(uri) == (
        f"{database}: this MLflow store's artifacts go to {old_store}: if the store was moved or copied from "
        f"there, its new runs' artifacts will too; run `lcp tracking relocate {database}` first"
    )
    # the workflow says so before any job, in a dry run too
    config = repo_config()
    config["tracking"] = {"enabled": True, "uri": uri}
    prepare_workdir(database.parent / "workflow", config)
    result = snakemake(database.parent / "workflow", "-n")
    assert result.returncode == 0 and moved_store_warning(uri) in result.stdout

    assert lcp(["tracking", "relocate", str(database)]) == 0
    assert moved_store_warning(uri) is None
    assert moved_store_warning("http://127.0.0.1:5000") is None
