"""`lcp workdir begin|finish`: when a training work dir is resumed, restarted or refused."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers.workflow import (
    hold_training_lock,
    kill_snakemake_when,
    planned_jobs,
    prepare_workdir,
    snakemake,
    tiny_demo_config,
)
from lcp.apis.resume import FINISHED_RECORD
from lcp.errors import LCPError
from lcp.tracking.journal import PENDING_DIR, Journal, find_journals
from lcp.workflow.workdir import (
    ENV_WORKFLOW_RUN,
    begin,
    finish,
    is_placeholder,
    record_interrupted_trainings,
)

REPO = Path(__file__).resolve().parents[2]


def write_checkpoint(path: Path, payload: str) -> None:
    """A file that passes for a complete torch checkpoint (a zip archive, as torch.save writes)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data.pkl", payload)


def test_new_dir_then_resume_from_newest_complete_checkpoint(tmp_path):
    work = tmp_path / "work"
    config = tmp_path / "model.py"
    config.write_text("x = 1\n")
    assert begin(work, "train model.py --seed 0", [str(config)]) == "new"
    write_checkpoint(work / "epoch_1.pth", "one")
    write_checkpoint(work / "epoch_2.pth", "two")
    (work / "epoch_3.pth").write_bytes(b"PK\x03\x04 truncated while saving")
    assert begin(work, "train model.py --seed 0", [str(config)]) == "resume from epoch_2.pth"
    assert (work / "epoch_1.pth").exists() and (work / "epoch_3.pth").exists()


def test_changed_request_or_input_restarts(tmp_path):
    work = tmp_path / "work"
    config = tmp_path / "model.py"
    config.write_text("lr = 0.01\n")
    begin(work, "train model.py --seed 0", [str(config)])
    write_checkpoint(work / "epoch_1.pth", "one")

    outcome = begin(work, "train model.py --seed 1", [str(config)])
    assert outcome == "restart: its checkpoints were made for another request"
    assert not (work / "epoch_1.pth").exists()

    write_checkpoint(work / "epoch_1.pth", "one")
    config.write_text("lr = 0.02\n")
    outcome = begin(work, "train model.py --seed 1", [str(config)])
    assert outcome == "restart: its checkpoints were made for another inputs"
    assert not (work / "epoch_1.pth").exists()


def test_an_image_set_made_again_restarts_and_the_cli_takes_every_path_of_an_input(tmp_path):
    """Image sets were not recorded: a training killed before a new split was converted resumed
    its epochs trained on what had become the test split."""
    work, images = tmp_path / "work", tmp_path / "images"
    images.mkdir()
    (images / "a.jpg").write_bytes(b"a")
    (images / "b.jpg").write_bytes(b"b")
    split = tmp_path / "train.json"
    split.write_text('{"images": ["a.jpg"]}')
    argv = [sys.executable, "-m", "lcp.cli", "workdir", "begin", str(work), "--request", "train"]
    argv += ["--input", str(images), str(split)]  # as Snakemake expands --input {input.data}
    subprocess.run(argv, check=True, capture_output=True)
    write_checkpoint(work / "epoch_1.pth", "one")
    assert begin(work, "train", [str(images), str(split)]) == "resume from epoch_1.pth"
    (images / "b.jpg").unlink()
    (images / "b.jpg").write_bytes(b"b")  # the same name and size, written again
    os.utime(images / "b.jpg", ns=(1, 1))
    assert begin(work, "train", [str(images), str(split)]) == "restart: its checkpoints were made for another inputs"


def test_a_restart_keeps_the_records_mlflow_has_not_received(tmp_path):
    """Emptying the work dir deleted mlflow-pending/ with the earlier training's unsent records,
    and `lcp tracking sync` then said nothing was pending."""
    work = tmp_path / "work"
    config = tmp_path / "model.py"
    config.write_text("lr = 0.01\n")
    begin(work, "train model.py", [str(config)])
    journal = Journal(work / PENDING_DIR / "key.jsonl")
    journal.write_header(
        {"run_key": "key", "run_id": None, "tracking_uri": "http://127.0.0.1:9", "experiment": "lcp/x"}
    )
    journal.add("metrics", metrics=[["train/loss", 1.0, 1, 1000]])
    write_checkpoint(work / "epoch_1.pth", "one")
    (work / "logs").mkdir()
    config.write_text("lr = 0.02\n")
    assert begin(work, "train model.py", [str(config)]).startswith("restart")
    assert sorted(p.name for p in work.iterdir()) == ["lcp-request.json", PENDING_DIR]
    assert find_journals([work]) == [journal.path.resolve()]
    assert [record["op"] for record in Journal(journal.path).read().pending] == ["metrics"]


def test_an_edit_to_a_base_file_of_the_config_restarts(tmp_path):
    """Only the top-level config was recorded: a run killed before an edit of its schedule's
    _base_ file resumed after it, one run with two configs."""
    (tmp_path / "_base_").mkdir()
    (tmp_path / "_base_" / "schedule.py").write_text("weight_decay = 1e-4\n")
    (tmp_path / "_base_" / "model.py").write_text("_base_ = './schedule.py'\nk = 10\n")
    config = tmp_path / "model.py"
    config.write_text("_base_ = ['_base_/model.py']\nlr = 0.01\n")
    work = tmp_path / "work"
    begin(work, "train model.py", [str(config)])
    write_checkpoint(work / "epoch_1.pth", "one")
    assert begin(work, "train model.py", [str(config)]) == "resume from epoch_1.pth"
    (tmp_path / "_base_" / "schedule.py").write_text("weight_decay = 5e-2\n")  # two levels down
    assert begin(work, "train model.py", [str(config)]) == "restart: its checkpoints were made for another inputs"
    assert not (work / "epoch_1.pth").exists()


def test_finish_publishes_newest_complete_checkpoint_and_next_begin_restarts(tmp_path):
    work = tmp_path / "work"
    begin(work, "train", [])
    write_checkpoint(work / "epoch_1.pth", "one")
    write_checkpoint(work / "epoch_2.pth", "two")
    os.symlink("epoch_2.pth", work / "latest.pth")
    out = tmp_path / "published" / "latest.pth"

    assert finish(work, out) == (work / "epoch_2.pth").resolve()
    assert zipfile.ZipFile(out).read("data.pkl") == b"two"
    assert not out.is_symlink()
    assert (work / FINISHED_RECORD).exists()
    # a forced rerun must train again, not "resume" the finished run
    assert begin(work, "train", []) == "restart: the previous run in it finished"
    assert sorted(p.name for p in work.iterdir()) == ["lcp-request.json"]
    assert zipfile.ZipFile(out).read("data.pkl") == b"two"  # the published file survives


def test_a_finished_run_whose_job_an_interrupted_workflow_left_incomplete_is_kept(tmp_path, monkeypatch):
    """Only while the workflow lists its checkpoint (lcp.workflow.session.note_interrupted_trainings),
    with the same request and inputs; otherwise a finished run restarts, as --forcerun needs."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "model.py"
    config.write_text("lr = 0.01\n")
    work, out = tmp_path / "work", tmp_path / "published" / "latest.pth"

    def finished_run():
        begin(work, "train", [str(config)], out)
        write_checkpoint(work / "epoch_1.pth", "one")
        out.unlink()  # snakemake removes a job's outputs before it runs it again
        finish(work, out)
        out.unlink()

    finished_run()
    record_interrupted_trainings([str(out.resolve())])
    outcome = begin(work, "train", [str(config)], out)
    assert outcome == "kept: its run finished while the workflow was being stopped, and is published again"
    assert (work / FINISHED_RECORD).exists() and (work / "epoch_1.pth").exists() and is_placeholder(out)
    assert finish(work, out) == (work / "epoch_1.pth").resolve()

    out.unlink()
    monkeypatch.setenv(ENV_WORKFLOW_RUN, "a run of the workflow without its onstart (--no-hooks)")
    assert begin(work, "train", [str(config)], out) == "restart: the previous run in it finished"
    finished_run()
    record_interrupted_trainings([str(out.resolve())])
    config.write_text("lr = 0.02\n")  # listed, but another input: trained again
    assert begin(work, "train", [str(config)], out) == "restart: the previous run in it finished"
    finished_run()
    record_interrupted_trainings([])  # the next run of the workflow forced it, or it was not incomplete
    assert begin(work, "train", [str(config)], out) == "restart: the previous run in it finished"


def test_finish_without_checkpoint_and_foreign_folder_are_errors(tmp_path):
    work = tmp_path / "work"
    begin(work, "train", [])
    with pytest.raises(LCPError, match="no complete checkpoint"):
        finish(work, tmp_path / "out.pth")
    assert not (tmp_path / "out.pth").exists()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(LCPError, match="no `lcp workdir begin` made"):
        begin(foreign, "train", [])
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_begin_holds_a_placeholder_at_the_output_until_finish_publishes(tmp_path):
    """The placeholder makes a job killed with snakemake leave an output snakemake can see as
    incomplete; it must never touch the work dir's checkpoints."""
    work, out = tmp_path / "work", tmp_path / "published" / "latest.pth"
    assert begin(work, "train", [], checkpoint=out) == "new"
    assert is_placeholder(out)
    write_checkpoint(work / "epoch_1.pth", "one")
    # a killed job's rerun: the placeholder is still there (snakemake removes it, or not)
    assert begin(work, "train", [], checkpoint=out) == "resume from epoch_1.pth"
    assert zipfile.ZipFile(work / "epoch_1.pth").read("data.pkl") == b"one"
    out.unlink()
    assert begin(work, "train", [], checkpoint=out) == "resume from epoch_1.pth"
    assert is_placeholder(out) and zipfile.ZipFile(work / "epoch_1.pth").read("data.pkl") == b"one"
    finish(work, out)
    assert zipfile.ZipFile(out).read("data.pkl") == b"one" and not is_placeholder(out)
    # a real checkpoint at the output is refused, not replaced by a placeholder
    with pytest.raises(LCPError, match="already exists"):
        begin(work, "train", [], checkpoint=out)
    assert zipfile.ZipFile(out).read("data.pkl") == b"one"


def test_begin_removes_the_evaluations_of_the_model_it_replaces(tmp_path):
    """Snakemake removes a failed job's outputs, the placeholder included: after a failed
    retraining `snakemake .../eval.json` said "Nothing to be done", the replaced model's numbers
    kept as if they were the new one's."""
    model = tmp_path / "results" / "demo" / "lcp" / "seed1"
    evaluations = [model / "eval.json", model / "robustness" / "beta_0.02.json"]
    others = [model / "robustness" / "notes.txt", tmp_path / "results" / "demo" / "lcp" / "seed0" / "eval.json"]
    for path in evaluations + others:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    outcome = begin(model / "work", "train", [], checkpoint=model / "latest.pth")
    assert outcome == f"new; removed the evaluations of the model it replaces ({evaluations[0]}, {evaluations[1]})"
    assert not any(path.exists() for path in evaluations) and all(path.exists() for path in others)
    assert begin(model / "work", "train", [], checkpoint=model / "latest.pth") == "new"


def test_begin_removes_the_scene_report_made_with_the_model_it_replaces(tmp_path):
    """After a retraining that failed (or `--until train_lcp`), `snakemake --report` packaged the
    scene's summary with the replaced model's numbers, without a word; without the summary it
    refuses, naming the missing file."""
    scene = tmp_path / "results" / "demo"
    reports = [scene / "report" / name for name in ("summary.html", "metrics.csv", "summary.md", "robustness.csv")]
    pictures = [scene / "report" / "crux_heatmaps" / "crux_heatmap_0.png"]
    for path in reports + pictures:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("old")
    model = scene / "lcp" / "seed1"
    outcome = begin(model / "work", "train", [], checkpoint=model / "latest.pth")
    assert outcome.startswith("new; removed the scene's report made with it (")
    assert not any(path.exists() for path in reports) and all(path.exists() for path in pictures)


def test_cli_reports_a_missing_input_as_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lcp.cli",
            "workdir",
            "begin",
            str(tmp_path / "work"),
            "--request",
            "train",
            "--input",
            str(tmp_path / "absent.py"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"lcp workdir: error: {tmp_path / 'absent.py'}: input file does not exist"


@pytest.mark.slow
def test_a_forced_training_killed_with_snakemake_is_known_incomplete_and_rerun_with_what_follows(tmp_path):
    """Issue 12: SIGKILL snakemake and its jobs during `--forcerun train_lcp`; the next run must
    not say "Nothing to be done" while the evaluation is the old model's."""
    config = tiny_demo_config(tmp_path)
    config["tracking"] = {"enabled": False}
    config["scenes"]["demo"]["demo"]["num_images"] = 8
    prepare_workdir(tmp_path, config)
    target = "results/demo/lcp/eval.json"
    first = snakemake(tmp_path, "--cores", "2", target, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:]

    log = tmp_path / "results" / "demo" / "logs" / "train_lcp.log"
    log.unlink()  # the first run's, which says the same
    kill_snakemake_when(
        tmp_path,
        "--cores",
        "2",
        "--forcerun",
        "train_lcp",
        target,
        timeout=600,
        ready=lambda: log.exists() and "TrainModeHook: epoch 2 trains" in log.read_text(errors="replace"),
        waiting_for="the forced training did not reach its second epoch",
    )
    assert is_placeholder(tmp_path / "results" / "demo" / "lcp" / "latest.pth")
    assert not (tmp_path / target).exists()  # the old model's evaluation went when its training began

    assert snakemake(tmp_path, "--unlock").returncode == 0  # snakemake's lock outlives a SIGKILL
    plain = snakemake(tmp_path, "-n", target)
    assert plain.returncode != 0 and "Nothing to be done" not in plain.stdout
    assert "IncompleteFilesException" in plain.stdout and "results/demo/lcp/latest.pth" in plain.stdout
    # with --rerun-incomplete (the profiles set it) the training is rerun, and what is made from it
    rerun = snakemake(tmp_path, "-n", "--rerun-incomplete", target)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert planned_jobs(rerun.stdout) == {"train_lcp": 1, "evaluate": 1}


def test_a_work_dir_a_training_still_runs_in_is_refused_until_it_ends(tmp_path):
    """The login node's snakemake dies, its SLURM job trains on, and the rerun (after --unlock)
    started a second training in the same work dir: begin emptied it or both wrote checkpoints."""
    work = tmp_path / "work"
    config = tmp_path / "model.py"
    config.write_text("x = 1\n")
    begin(work, "train model.py", [str(config)])
    write_checkpoint(work / "epoch_1.pth", "one")
    holder = hold_training_lock(work)
    try:
        with pytest.raises(LCPError, match=rf"^{work}: another training is running in it \(pid {holder.pid} on "):
            begin(work, "train model.py --seed 1", [str(config)])  # would restart: empty the folder
        assert (work / "epoch_1.pth").exists()
    finally:
        holder.kill()  # SIGKILL: the kernel releases the lock, none stays behind
        holder.wait()
    assert begin(work, "train model.py --seed 1", [str(config)]).startswith("restart")


def test_begin_outside_results_removes_no_report(tmp_path):
    """paths.reports_of: [] for a checkpoint outside results/<scene>/ (`lcp workdir begin` by hand)."""
    report = tmp_path / "exp" / "report" / "summary.html"
    report.parent.mkdir(parents=True)
    report.write_text("mine")
    model = tmp_path / "exp" / "lcp"
    assert begin(model / "work", "train", [], checkpoint=model / "latest.pth") == "new"
    assert report.exists()
