"""A workflow invocation groups its job runs under one parent run per scene."""

import json
import os
import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from lcp.cli import main as lcp
from lcp.tracking import close_invocation, log_evaluation, open_invocation
from lcp.tracking.api import start_run

METRICS = {"bbox_mAP": 0.3, "bbox_mAP_50": 0.5, "bbox_mAP_75": 0.31, "classwise": {"car": 0.4, "bus": None}}


@pytest.fixture
def server_env(monkeypatch, mlflow_server):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    for name in ("LCP_INVOCATION_ID", "LCP_MLFLOW_PARENT_RUN_IDS", "LCP_SNAKEMAKE_RULE", "LCP_SNAKEMAKE_WILDCARDS"):
        # set, then delete: monkeypatch then removes what open_invocation exports at teardown,
        # instead of leaking it into later tests' environments
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return MlflowClient(mlflow_server.uri)


def runs_of(client, experiment, invocation_id):
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    return client.search_runs([experiment_id], filter_string=f"tags.`lcp.invocation_id` = '{invocation_id}'")


def test_two_job_runs_of_one_invocation_share_one_parent(tmp_path, server_env, monkeypatch, capsys):
    client = server_env
    invocation = open_invocation(["invdemo"], descriptions={"invdemo": "shapes in fog", "other": "not opened"})
    experiment = client.get_experiment_by_name("lcp/invdemo")
    # the UI shows it as a model-training experiment (not its GenAI view), with the scene's description
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"] == "shapes in fog"
    assert client.get_experiment_by_name("lcp/other") is None
    assert os.environ["LCP_INVOCATION_ID"] == invocation.invocation_id
    parent_id = json.loads(os.environ["LCP_MLFLOW_PARENT_RUN_IDS"])["invdemo"]
    again = open_invocation(["invdemo"])  # the same environment: no second parent
    assert again.parent_run_ids == {"invdemo": parent_id}

    child_ids = []
    for method in ("baseline", "lcp"):  # two jobs, as their rules would run them
        monkeypatch.setenv("LCP_SNAKEMAKE_RULE", "evaluate")
        monkeypatch.setenv("LCP_SNAKEMAKE_WILDCARDS", json.dumps({"scene": "invdemo", "method": method}))
        eval_json = tmp_path / method / "eval.json"
        eval_json.parent.mkdir()
        eval_json.write_text(json.dumps(METRICS))
        child_ids.append(log_evaluation(eval_json, scene="invdemo", method=method))
        printed = capsys.readouterr().out
        assert f"MLflow run invdemo/evaluate/{method} (id {child_ids[-1]}): http://127.0.0.1:" in printed
    monkeypatch.setenv("LCP_SEED", "1")
    training = start_run(scene="invdemo", step="train", method="lcp", work_dir=tmp_path)
    for epoch, ap in enumerate((20.0, 35.0, 30.0), start=1):
        training.log_metrics({"val/AP": ap}, step=epoch)
    training.finish()
    child_ids.append(training.run_id)

    assert close_invocation("FINISHED") == {"invdemo": parent_id}
    runs = {r.info.run_id: r for r in runs_of(client, "lcp/invdemo", invocation.invocation_id)}
    assert set(runs) == {parent_id, *child_ids}
    parent = runs[parent_id]
    assert parent.data.tags["lcp.role"] == "invocation" and parent.info.status == "FINISHED"
    assert parent.info.run_name.startswith("invdemo/workflow/")
    # the parent summarises its children: their AP (percent) as metrics, and a table
    assert parent.data.metrics == {
        "evaluate/baseline/AP": pytest.approx(30.0),
        "evaluate/lcp/AP": pytest.approx(30.0),
        "train/lcp/seed1/val_AP_last": 30.0,
        "train/lcp/seed1/val_AP_best": 35.0,
    }
    table = Path(client.download_artifacts(parent_id, "summary/children.md", str(tmp_path))).read_text()
    assert "| invdemo/train/lcp | 1 | FINISHED | val_AP_last 30.0, val_AP_best 35.0 |" in table
    assert table.count("| invdemo/evaluate/") == 2
    for child_id, method in zip(child_ids[:2], ("baseline", "lcp"), strict=True):
        child = runs[child_id]
        assert child.data.tags["mlflow.parentRunId"] == parent_id
        assert child.info.run_name == f"invdemo/evaluate/{method}"
        assert child.data.tags["snakemake.wildcard.method"] == method
        assert child.data.metrics["test/AP"] == pytest.approx(30.0)  # percent, as the reports and the paper
        assert child.data.metrics["test/AP/car"] == pytest.approx(40.0)
        assert "test/AP/bus" not in child.data.metrics  # no ground truth: no AP
        assert [a.path for a in client.list_artifacts(child_id, "evaluation")] == ["evaluation/eval.json"]


def test_runs_of_a_scene_without_parent_are_adopted_when_the_invocation_closes(tmp_path, server_env, capsys):
    client = server_env
    # the shell form the workflow may use instead of the Python API
    assert lcp(["tracking", "open-invocation", "--scene", "invopened"]) == 0
    exports = dict(line[len("export ") :].split("=", 1) for line in capsys.readouterr().out.splitlines())
    invocation_id = exports["LCP_INVOCATION_ID"]
    os.environ["LCP_INVOCATION_ID"] = invocation_id  # the job's environment (monkeypatch restores it)
    try:
        orphan = log_evaluation(dict(METRICS), scene="invlate", method="lcp", work_dir=tmp_path)
    finally:
        del os.environ["LCP_INVOCATION_ID"]
    assert "mlflow.parentRunId" not in client.get_run(orphan).data.tags

    assert lcp(["tracking", "close-invocation", "--invocation-id", invocation_id, "--status", "FAILED"]) == 0
    parents = [r for r in runs_of(client, "lcp/invlate", invocation_id) if r.data.tags.get("lcp.role")]
    assert len(parents) == 1 and parents[0].info.status == "FAILED"
    assert client.get_run(orphan).data.tags["mlflow.parentRunId"] == parents[0].info.run_id
    opened = [r for r in runs_of(client, "lcp/invopened", invocation_id) if r.data.tags.get("lcp.role")]
    assert len(opened) == 1 and opened[0].info.status == "FAILED"


def test_a_new_invocation_never_reuses_the_parents_of_an_inherited_one(server_env):
    # a workflow started from a shell that still holds an earlier invocation's variables
    inherited = open_invocation(["invnew"])
    fresh = open_invocation(["invnew"], invocation_id=uuid.uuid4().hex)
    assert fresh.invocation_id != inherited.invocation_id
    assert fresh.parent_run_ids["invnew"] != inherited.parent_run_ids["invnew"]
    assert json.loads(os.environ["LCP_MLFLOW_PARENT_RUN_IDS"]) == fresh.parent_run_ids
    assert close_invocation("FINISHED") == fresh.parent_run_ids


def test_a_retried_training_is_summarised_by_its_finished_run_not_the_failed_attempt(tmp_path, server_env, monkeypatch):
    """A job retried before its first checkpoint starts a second run of the same name; the
    parent logged both under one key, and the older, failed attempt's value came last and was
    the one MLflow showed."""
    client = server_env
    invocation = open_invocation(["invretry"])
    parent_id = invocation.parent_run_ids["invretry"]
    monkeypatch.setenv("LCP_SEED", "1")
    for status, aps in (("FAILED", (5.0, 8.0, 12.0)), ("FINISHED", (10.0, 20.0, 30.0))):
        attempt = start_run(scene="invretry", step="train", method="lcp", work_dir=tmp_path / status)
        for epoch, ap in enumerate(aps, start=1):
            attempt.log_metrics({"val/AP": ap}, step=epoch)
        attempt.finish(status)
    close_invocation("FINISHED")
    assert client.get_run(parent_id).data.metrics == {
        "train/lcp/seed1/val_AP_last": 30.0,
        "train/lcp/seed1/val_AP_best": 30.0,
    }
    table = Path(client.download_artifacts(parent_id, "summary/children.md", str(tmp_path))).read_text()
    assert "| FAILED | val_AP_last 12.0" in table and "| FINISHED | val_AP_last 30.0" in table


def test_a_job_run_left_running_is_ended_as_killed_when_the_invocation_closes(tmp_path, server_env, monkeypatch):
    """A training SIGKILLed before its first checkpoint (the out-of-memory killer) was retried
    as a new run; the killed attempt stayed RUNNING for good, and the parent had no word on
    which job failed."""
    client = server_env
    invocation = open_invocation(["invleft"])
    parent_id = invocation.parent_run_ids["invleft"]
    killed = start_run(scene="invleft", step="train", method="lcp", work_dir=tmp_path / "killed")
    killed.flush()  # its process dies here: nothing ends the run
    retried = start_run(scene="invleft", step="train", method="lcp", work_dir=tmp_path / "retried")
    retried.finish()
    workflow_log = tmp_path / "2026-11-29T231500.snakemake.log"
    workflow_log.write_text("Error in rule train_lcp:\n    log: results/invleft/logs/train_lcp.log\n")
    close_invocation("FAILED", workflow_logs=[str(workflow_log)])
    assert client.get_run(killed.run_id).info.status == "KILLED"
    assert client.get_run(killed.run_id).data.tags["lcp.ended_by"].startswith("the end of its run of the workflow")
    assert client.get_run(retried.run_id).info.status == "FINISHED"
    assert client.get_run(parent_id).info.status == "FAILED"
    kept = Path(client.download_artifacts(parent_id, f"workflow/{workflow_log.name}", str(tmp_path / "got")))
    assert kept.read_text() == workflow_log.read_text()
    table = Path(client.download_artifacts(parent_id, "summary/children.md", str(tmp_path))).read_text()
    assert "| KILLED |" in table and "RUNNING" not in table


KILLED_WORKFLOW = """
import json, sys, uuid
from pathlib import Path
from lcp.tracking import open_invocation
from lcp.tracking.api import start_run

invocation = open_invocation(["invkilled"], invocation_id=uuid.uuid4().hex)
finished = start_run(scene="invkilled", step="train", method="baseline", work_dir=Path("b"))
finished.finish()
running = start_run(scene="invkilled", step="train", method="lcp", work_dir=Path("l"))
running.flush()
print(json.dumps([invocation.parent_run_ids["invkilled"], finished.run_id, running.run_id]))
"""  # then it ends without closing anything, as a SIGKILLed snakemake does


def test_the_runs_a_killed_invocation_left_running_are_ended_by_the_next_one_in_its_folder(
    tmp_path, server_env, monkeypatch
):
    """A SIGKILLed workflow closes nothing: its parent run and the runs of its unfinished jobs
    stayed RUNNING in the UI for good. Those of a run going on at the same time stay RUNNING."""
    import subprocess
    import sys

    client = server_env

    def killed_workflow(folder):
        folder.mkdir()
        done = subprocess.run(
            [sys.executable, "-c", KILLED_WORKFLOW], cwd=folder, capture_output=True, text=True, check=True
        )
        return json.loads(done.stdout.splitlines()[-1])

    killed_parent, finished_id, running_id = killed_workflow(tmp_path / "here")
    other_parent, _, other_running_id = killed_workflow(tmp_path / "elsewhere")  # another folder's
    monkeypatch.chdir(tmp_path / "here")
    live = open_invocation(["invkilled"], invocation_id=uuid.uuid4().hex)  # this process: still running
    fresh = open_invocation(["invkilled"], invocation_id=uuid.uuid4().hex)

    def status(run_id):
        return client.get_run(run_id).info.status

    assert status(killed_parent) == "KILLED" and status(running_id) == "KILLED"
    assert status(finished_id) == "FINISHED"
    assert status(other_parent) == "RUNNING" and status(other_running_id) == "RUNNING"
    assert status(live.parent_run_ids["invkilled"]) == "RUNNING"
    assert status(fresh.parent_run_ids["invkilled"]) == "RUNNING"
    assert client.get_run(killed_parent).data.tags["lcp.ended_by"] == f"the run of the workflow {live.invocation_id}"
