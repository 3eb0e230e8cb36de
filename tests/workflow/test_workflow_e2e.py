"""The demo DAG run for real on this machine (profiles/local), then reruns and a killed training job."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

import lcp.report.metrics
from helpers.workflow import (
    REPO,
    failure_details,
    kill_snakemake_when,
    planned_jobs,
    snakemake,
    snakemake_command,
    workflow_env,
    write_config,
)
from lcp.apis.resume import find_resume_checkpoint
from lcp.workflow.workdir import is_placeholder

pytestmark = pytest.mark.slow

PROFILE = ("--profile", str(REPO / "profiles" / "local"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo(demo_dag):
    """A finished run of the tiny demo DAG (conftest.py); the tests below rerun parts of it in order."""
    return demo_dag


def test_demo_dag_evaluates_both_methods_and_reports(demo):
    results = demo / "results" / "demo"
    for method in ("baseline", "lcp"):
        metrics = json.loads((results / method / "eval.json").read_text())
        assert set(metrics["classwise"]) == {"circle", "square", "triangle"}
        assert 0.0 <= metrics["bbox_mAP"] <= 1.0 and metrics["num_images"] > 0
        robustness = json.loads((results / method / "robustness" / "beta_0.08.json").read_text())
        assert robustness["num_images"] == metrics["num_images"]
    assert json.loads((results / "data" / "check.json").read_text())["ok"] is True

    rows = list(csv.DictReader((results / "report" / "metrics.csv").open()))
    assert [row["method"] for row in rows] == ["baseline", "lcp"]
    lcp_ap = json.loads((results / "lcp" / "eval.json").read_text())["bbox_mAP"]
    assert float(rows[1]["AP"]) == pytest.approx(100 * lcp_ap, abs=0.01)
    sweep = list(csv.DictReader((results / "report" / "robustness.csv").open()))
    assert [(row["method"], row["value"]) for row in sweep] == [("baseline", "0.08"), ("lcp", "0.08")]
    for png in ("classwise_ap.png", "robustness.png", *(f"crux_heatmaps/crux_heatmap_{i}.png" for i in range(4))):
        assert (results / "report" / png).read_bytes()[:8] == PNG_SIGNATURE
    assert sorted(path.name for path in (results / "report" / "crux_heatmaps").iterdir()) == [
        f"crux_heatmap_{i}.png" for i in range(4)
    ]
    assert sorted(path.name for path in (results / "report" / "detections").iterdir()) == [
        f"{method}_{i}.jpg" for method in ("baseline", "lcp") for i in range(3)
    ]
    assert "Sample detections" in (results / "report" / "summary.html").read_text()
    summary = (results / "report" / "summary.md").read_text()
    assert "| lcp |" in summary and "±" not in summary  # one seed: no spread
    assert "crux_health" in json.loads((results / "lcp" / "eval.json").read_text()) and "## Crux learner" in summary

    # every job left a log and a benchmark; the training work dirs are kept for resuming
    assert len(list((results / "logs").glob("*.log"))) == len(list((results / "benchmarks").glob("*.tsv"))) == 14
    for step in ("pretrain", "baseline", "lcp"):
        assert (results / step / "latest.pth").is_file() and (results / step / "work" / "lcp-finished.json").is_file()
    assert not [p for p in demo.rglob("*") if p.name.endswith((".tmp", ".partial"))]


def test_a_finished_run_ends_saying_where_the_report_and_the_runs_are(demo):
    output = (demo / "first-run.out").read_text()
    assert "scene demo: results/demo/report/summary.html\n" in output
    browse = next(line for line in output.splitlines() if line.startswith("runs in MLflow: "))
    assert (
        browse
        == f"runs in MLflow: {Path(sys.executable).parent}/mlflow ui --backend-store-uri sqlite:///{demo}/mlflow.db"
    )
    # a job's log names the same command: the jobs' PATH has the venv, the user's shell had not
    assert (
        f"run `{browse.removeprefix('runs in MLflow: ')}`"
        in (demo / "results" / "demo" / "logs" / "train_lcp.log").read_text()
    )
    # and the profile leaves the jobs' shell commands to -p
    assert "Shell command:" not in output
    # the parent run keeps Snakemake's log of the run
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{demo}/mlflow.db")
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("lcp/demo").experiment_id], filter_string="tags.`lcp.role` = 'invocation'"
    )
    (kept,) = client.list_artifacts(parent.info.run_id, "workflow")
    assert kept.path.endswith(".snakemake.log")


def test_every_job_logged_to_mlflow_under_the_invocation(demo):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{demo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("lcp/demo")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # not MLflow's GenAI view
    assert experiment.tags["mlflow.note.content"].startswith("generated street-like shapes")  # the scene's description
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [run for run in runs if run.data.tags.get("lcp.role") == "invocation"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == len(runs) - 1  # every job's run sits under the invocation
    names = sorted(run.info.run_name for run in children)
    assert names == sorted(
        [
            "demo/pretrain/baseline",
            "demo/train/baseline",
            "demo/train/lcp",
            "demo/evaluate/baseline",
            "demo/evaluate/lcp",
            "demo/evaluate/baseline/beta_0.08",
            "demo/evaluate/lcp/beta_0.08",
            "demo/check/all",
            "demo/report/all",
            "demo/report/all/robustness",
        ]
    )
    rules = {run.info.run_name: run.data.tags.get("snakemake.rule") for run in children}
    assert rules == {
        "demo/pretrain/baseline": "pretrain",
        "demo/train/baseline": "train_baseline",
        "demo/train/lcp": "train_lcp",
        "demo/evaluate/baseline": "evaluate",
        "demo/evaluate/lcp": "evaluate",
        "demo/evaluate/baseline/beta_0.08": "evaluate_robustness",
        "demo/evaluate/lcp/beta_0.08": "evaluate_robustness",
        "demo/check/all": "check_data",
        "demo/report/all": "report",
        "demo/report/all/robustness": "report_robustness",
    }
    # the training and evaluation runs carry the training seed (the scene's one seed: the top-level seed)
    seeded = [
        run
        for run in children
        if run.data.tags.get("snakemake.rule")
        in ("pretrain", "train_baseline", "train_lcp", "evaluate", "evaluate_robustness")
    ]
    assert len(seeded) == 7
    assert {run.data.tags.get("lcp.seed") for run in seeded} == {run.data.params.get("seed") for run in seeded} == {"0"}
    evaluation = next(run for run in children if run.info.run_name == "demo/evaluate/lcp")
    lcp_ap = json.loads((demo / "results" / "demo" / "lcp" / "eval.json").read_text())["bbox_mAP"]
    assert evaluation.data.metrics["test/AP"] == pytest.approx(100 * lcp_ap)  # MLflow's AP is in percent


def test_rerun_does_only_what_is_needed(demo):
    assert "Nothing to be done" in snakemake(demo, "-n").stdout

    # a changed report module (an upgrade that fixes a table) remakes the reports, and only them:
    # snakemake saw the Snakefile's code, not the package's, and the old tables stayed
    # (a touch alone is no change: snakemake compares a small input's checksum)
    module = Path(lcp.report.metrics.__file__)
    code, times = module.read_bytes(), module.stat()
    try:
        module.write_bytes(code + b"\n# an edit\n")
        dry = snakemake(demo, "-n").stdout
        assert planned_jobs(dry) == {"report": 1, "report_robustness": 1, "all": 1}, dry[-4000:]
        assert f"Updated input files: {module}" in dry
        # --touch runs nothing, so it logs nothing (it opened an empty parent run per scene)
        with sqlite3.connect(demo / "mlflow.db") as store:
            runs_before = store.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        touched = snakemake(demo, "--touch")
        assert touched.returncode == 0, touched.stdout[-3000:]
        with sqlite3.connect(demo / "mlflow.db") as store:
            assert store.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == runs_before
    finally:
        module.write_bytes(code)
        os.utime(module, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert "Nothing to be done" in snakemake(demo, "-n").stdout

    # GPUs are a resource, not a setting of the result: more of them do not retrain a finished model
    config = yaml.safe_load((demo / "test-config.yaml").read_text())
    more_gpus = yaml.safe_load((demo / "test-config.yaml").read_text())
    more_gpus["scenes"]["demo"]["resources"]["train_lcp"] = {"gpus": 2}
    write_config(demo, more_gpus)
    assert "Nothing to be done" in snakemake(demo, "-n").stdout
    # nor does tracking (its log-artifacts was in the check's code: every training reran)
    untracked = yaml.safe_load((demo / "test-config.yaml").read_text())
    untracked["tracking"]["enabled"] = False
    write_config(demo, untracked)
    assert "Nothing to be done" in snakemake(demo, "-n").stdout
    # a data check run again is followed by what it gates: it was ancient() to spare the
    # trainings, and snakemake then never looked at their own changed settings (new classes:
    # a report from the old models)
    stricter = yaml.safe_load((demo / "test-config.yaml").read_text())
    stricter["scenes"]["demo"]["check_options"] = {"max-erased-share": 0.2}
    write_config(demo, stricter)
    planned = planned_jobs(snakemake(demo, "-n").stdout)
    assert {"check_data", "pretrain", "train_baseline", "train_lcp", "evaluate", "report"} <= set(planned), planned
    write_config(demo, config)
    # a result deleted by hand (or by snakemake, after its job failed) is made again
    check = demo / "results" / "demo" / "data" / "check.json"
    kept, times = check.read_bytes(), check.stat()
    check.unlink()
    assert "check_data" in planned_jobs(snakemake(demo, "-n").stdout)
    check.write_bytes(kept)
    os.utime(check, ns=(times.st_atime_ns, times.st_mtime_ns))  # back to where the run left it
    assert "Nothing to be done" in snakemake(demo, "-n").stdout

    # rerunning one step: only that step, then only what depends on it
    (demo / "results" / "demo" / "baseline" / "eval.json").unlink()
    target = "results/demo/baseline/eval.json"
    assert planned_jobs(snakemake(demo, "-n", target).stdout) == {"evaluate": 1}
    rerun = snakemake(demo, *PROFILE, target)
    assert rerun.returncode == 0, failure_details(demo, rerun)
    # only the report may follow (snakemake skips it when the new eval.json has the same content)
    assert set(planned_jobs(snakemake(demo, "-n").stdout)) <= {"report", "all"}
    rerun = snakemake(demo, *PROFILE)
    assert rerun.returncode == 0, failure_details(demo, rerun)

    forced = planned_jobs(snakemake(demo, "-n", "--forcerun", "train_lcp").stdout)
    assert forced == {
        "train_lcp": 1,
        "evaluate": 1,
        "evaluate_robustness": 1,
        "report": 1,
        "report_robustness": 1,
        "crux_heatmaps": 1,
        "sample_detections": 1,
        "all": 1,
    }
    summary = snakemake(demo, "--summary").stdout
    rows = [line.split("\t") for line in summary.splitlines() if "\t" in line]
    statuses = {row[0]: row[4] for row in rows if row[0] != "output_file"}
    assert statuses["results/demo/report/metrics.csv"] == "ok"
    assert set(statuses.values()) == {"ok"}


def test_report_html(demo):
    result = snakemake(demo, "--report", "report.html", timeout=300)
    assert result.returncode == 0, result.stdout
    html = (demo / "report.html").read_text(errors="replace")
    assert "classwise_ap.png" in html and "robustness.png" in html and "metrics.csv" in html
    assert "crux_heatmap_0.png" in html and "Crux learner" in html


def test_killed_training_resumes_and_finishes_its_epochs(demo):
    """SIGKILL a training job mid-way (like a cluster time limit), rerun: it resumes, same epochs."""
    config = yaml.safe_load((demo / "test-config.yaml").read_text())
    config["scenes"]["demo"]["lcp"]["cfg_options"].update({"runner.max_epochs": 3, "lr_config.step": "[3]"})
    (demo / "test-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    work = demo / "results" / "demo" / "lcp" / "work"
    target = "results/demo/lcp/latest.pth"

    # the params changed, so the finished run is cleared first; kill at its first new checkpoint
    kill_snakemake_when(
        demo,
        *PROFILE,
        target,
        timeout=300,
        ready=lambda: (
            (work / "lcp-request.json").exists()
            and not (work / "lcp-finished.json").exists()
            and find_resume_checkpoint(work) is not None
        ),
        waiting_for="no checkpoint",
    )
    killed_at = find_resume_checkpoint(work).name
    assert killed_at in ("epoch_1.pth", "epoch_2.pth")
    assert is_placeholder(demo / target)  # marked incomplete, not missing (see lcp workdir begin)

    assert snakemake(demo, "--unlock").returncode == 0
    rerun = snakemake(demo, *PROFILE, target, timeout=600)
    assert rerun.returncode == 0, failure_details(demo, rerun)
    log = (demo / "results" / "demo" / "logs" / "train_lcp.log").read_text()
    assert f"lcp workdir: results/demo/lcp/work: resume from {killed_at}" in log
    checkpoint = torch.load(demo / target, map_location="cpu", weights_only=False)
    assert checkpoint["meta"]["epoch"] == 3
    assert zipfile.is_zipfile(demo / target)
    # the resumed process trained only the epochs after the checkpoint it resumed from
    trained = sorted({int(line.split("Epoch [")[1].split("]")[0]) for line in log.splitlines() if "Epoch [" in line})
    assert trained == list(range(int(killed_at[6:-4]) + 1, 4))


def test_a_training_that_finishes_while_the_workflow_stops_is_not_trained_again(demo):
    """A SIGINT to snakemake alone (a process manager, or a cluster controller that is lost while
    its jobs run on) lets the running training finish, then marks its output incomplete; the
    rerun trained it again from scratch and logged it to MLflow a second time."""
    work = demo / "results" / "demo" / "pretrain" / "work"
    target = "results/demo/pretrain/latest.pth"
    runs = "select count(*) from runs where name = 'demo/pretrain/baseline'"
    job = subprocess.Popen(
        snakemake_command(demo, *PROFILE, target, "--forcerun", "pretrain"),
        cwd=demo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=workflow_env(),
        # a test run started in the background (nohup ... &) ignores SIGINT, and so would snakemake
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not ((work / "lcp-request.json").exists() and not (work / "lcp-finished.json").exists()):
        assert job.poll() is None and time.monotonic() < deadline, "the forced pretraining did not start"
        time.sleep(0.05)
    job.send_signal(signal.SIGINT)
    assert job.wait(timeout=300) != 0
    assert (work / "lcp-finished.json").exists()  # the training ran to its end
    with sqlite3.connect(demo / "mlflow.db") as store:
        trained = store.execute(runs).fetchone()[0]

    rerun = snakemake(demo, *PROFILE, target, timeout=300)
    assert rerun.returncode == 0, failure_details(demo, rerun)
    log = (demo / "results" / "demo" / "logs" / "pretrain.log").read_text()
    assert "lcp workdir: results/demo/pretrain/work: kept: its run finished while the workflow was being stopped" in log
    assert "lcp train: results/demo/pretrain/work: its run finished (epoch_" in log and "Epoch [" not in log
    assert zipfile.is_zipfile(demo / target)
    with sqlite3.connect(demo / "mlflow.db") as store:
        assert store.execute(runs).fetchone()[0] == trained

    # what the user forces still trains again
    forced = snakemake(demo, *PROFILE, target, "--forcerun", "pretrain", timeout=300)
    assert forced.returncode == 0, failure_details(demo, forced)
    log = (demo / "results" / "demo" / "logs" / "pretrain.log").read_text()
    assert "restart: the previous run in it finished" in log and "Epoch [" in log
