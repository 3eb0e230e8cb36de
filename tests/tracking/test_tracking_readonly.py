"""Tracking commands that only read (`lcp compare`, `lcp tracking uri`, a sync with nothing pending)
create no MLflow store where there is none, and say so in one line."""

import pytest

from lcp.cli import main as lcp


@pytest.fixture
def empty_folder(tmp_path, monkeypatch):
    """The current folder: empty, in no git checkout, no tracking URI set (the default store is here)."""
    for name in ("MLFLOW_TRACKING_URI", "LCP_INVOCATION_ID", "LCP_MLFLOW_PARENT_RUN_IDS"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "here"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def everything_under(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize("uri_from", ["default", "flag", "env"])
def test_compare_without_a_store_creates_nothing_and_says_so_in_one_line(empty_folder, monkeypatch, capsys, uri_from):
    database = empty_folder / "results" / "mlflow" / "mlflow.db"
    args = ["compare"]
    if uri_from == "flag":
        database = empty_folder / "elsewhere" / "mlflow.db"
        args += ["--tracking-uri", f"sqlite:///{database}"]
    elif uri_from == "env":
        database = empty_folder / "team.db"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///team.db")  # relative, as users write it

    assert lcp(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"lcp compare: error: {database}: no MLflow store here, nothing was logged to it "
        "(set MLFLOW_TRACKING_URI or --tracking-uri to read another store)\n"
    )
    assert everything_under(empty_folder) == []


def test_tracking_uri_and_an_empty_sync_create_nothing(empty_folder, capsys):
    assert lcp(["tracking", "uri"]) == 0
    out, err = capsys.readouterr()
    database = empty_folder / "results" / "mlflow" / "mlflow.db"
    assert out.strip() == f"sqlite:///{database}"
    assert err.strip() == f"not created yet: {database} (the first tracked run creates it)"

    (empty_folder / "work").mkdir()
    assert lcp(["tracking", "sync", "work"]) == 0
    assert capsys.readouterr().out.strip() == "lcp tracking sync: nothing pending"
    assert everything_under(empty_folder) == ["work"]
