"""`lcp train/test/infer` end to end on the tiny configs and a 3-image demo scene, on the CPU:
pretrain -> LCP training in both modes (losses fall) -> resume -> evaluate -> infer."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers.workflow import hold_training_lock
from lcp.cli import main as lcp
from lcp.errors import LCPError

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "config" / "mmdet"
PLAIN_TINY = str(CONFIGS / "cascade_rcnn_tiny_demo.py")
LCP_TINY = str(CONFIGS / "lcp_tiny_demo.py")
CLASSES = ["circle", "square", "triangle"]
LCP_ONLY_KEY_PREFIXES = ("crux_learner.", "backbone.catch_up_learner.", "backbone.catch_up_fusion.")
QUICK = ["data.workers_per_gpu=0", "log_config.interval=1"]


def scene_options(workspace: Path) -> list[str]:
    return [f"data_root={workspace / 'demo'}/", *QUICK]


@pytest.fixture(scope="module")
def pretrained(workspace) -> Path:
    """One epoch of the plain tiny detector on the clean images."""
    work_dir = workspace / "pretrain"
    assert (
        lcp(
            [
                "train",
                PLAIN_TINY,
                "--work-dir",
                str(work_dir),
                "--no-validate",
                "--cfg-options",
                *scene_options(workspace),
                "runner.max_epochs=1",
            ]
        )
        == 0
    )
    return work_dir / "epoch_1.pth"


@pytest.fixture(scope="module")
def repeat_config(workspace) -> Path:
    """The tiny LCP config with its 2 training images repeated: 4 iterations on the same batch
    per epoch (no flip, no warm-up), so each mode's loss must fall within its epoch."""
    path = workspace / "lcp_tiny_repeat.py"
    path.write_text(
        f"_base_ = {LCP_TINY!r}\n"
        "data = dict(train=dict(_delete_=True, type='RepeatDataset', times=4, dataset={{_base_.data.train}}))\n"
        "lr_config = dict(warmup=None)\n"
        "kl_loss_weight = 100\n"
    )
    return path


def train_lcp(workspace, repeat_config, pretrained, *extra) -> int:
    return lcp(
        [
            "train",
            str(repeat_config),
            "--work-dir",
            str(workspace / "lcp"),
            "--no-validate",
            *extra,
            "--cfg-options",
            *scene_options(workspace),
            f"load_from={pretrained}",
            "data.train.dataset.dataset.pipeline.4.flip_ratio=0.0",
        ]
    )


def log_entries(work_dir: Path) -> list[dict]:
    entries = []
    for log in sorted(work_dir.glob("*.log.json")):
        entries += [json.loads(line) for line in log.read_text().splitlines() if '"mode": "train"' in line]
    return entries


@pytest.fixture(scope="module")
def lcp_run(workspace, repeat_config, pretrained) -> Path:
    assert train_lcp(workspace, repeat_config, pretrained, "--cfg-options", "runner.max_epochs=2") == 0
    return workspace / "lcp"


def test_training_writes_checkpoints_resolved_config_and_the_missing_init_keys(lcp_run, pretrained):
    assert {p.name for p in lcp_run.glob("*.pth")} == {"epoch_1.pth", "epoch_2.pth", "latest.pth"}
    dumped = (lcp_run / "lcp_tiny_repeat.py").read_text()
    assert "${" not in dumped and "DFPairedDataset" in dumped and str(pretrained) in dumped
    log = "\n".join(p.read_text() for p in lcp_run.glob("*.log"))
    line = next(line for line in log.splitlines() if f"Initialised from {pretrained}" in line)
    missing = line.split("(keep their initialisation): ")[1].split(";")[0].split(", ")
    assert missing and all(key.startswith(LCP_ONLY_KEY_PREFIXES) for key in missing)
    assert "crux_learner.h_evaluation.2.conv3.weight" in missing
    assert "backbone.catch_up_fusion.weight" in missing
    # the config a checkpoint records (and MLflow's param init.load_from, read from it) names the init
    import torch

    recorded = torch.load(lcp_run / "epoch_1.pth", map_location="cpu", weights_only=False)["meta"]["config"]
    assert f"load_from = '{pretrained}'" in recorded


def test_each_mode_trains_its_own_loss_and_it_falls(lcp_run):
    entries = log_entries(lcp_run)
    catch_up = [e for e in entries if e["epoch"] == 1]
    crux = [e for e in entries if e["epoch"] == 2]
    assert len(catch_up) == len(crux) == 4
    assert all("kl_loss" in e and "loss_rpn_cls" not in e for e in catch_up)
    assert all("loss_rpn_cls" in e and "kl_loss" not in e for e in crux)
    assert catch_up[-1]["kl_loss"] < catch_up[0]["kl_loss"]
    assert crux[-1]["loss"] < crux[0]["loss"]


def test_mmdets_own_train_and_test_tools_run_an_lcp_config_through_its_custom_imports(
    workspace, repeat_config, pretrained, tmp_path
):
    """mmdet's tools/train.py and tools/test.py, as mmdet installs them, on an LCP config: lcp comes
    in through the config's custom_imports only; the mode plan and the crux health run, and
    tools/test.py detects as `lcp test` does, the crux branch included."""
    import mmdet

    tools = Path(mmdet.__file__).parent / ".mim" / "tools"
    env = {**os.environ, "MMDET_DATASETS": f"{workspace / 'demo'}/"}  # mmdet's way to move data_root

    def mmdet_tool(name, *args):
        result = subprocess.run(
            [sys.executable, str(tools / name), *args], env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr[-3000:]

    work = tmp_path / "work"
    options = [*QUICK, "runner.max_epochs=2", f"load_from={pretrained}"]
    mmdet_tool("train.py", str(repeat_config), "--work-dir", str(work), "--seed", "0", "--cfg-options", *options)
    entries = [json.loads(line) for line in next(work.glob("*.log.json")).read_text().splitlines()[1:]]
    train = [e for e in entries if e["mode"] == "train"]
    assert {e["epoch"] for e in train if "kl_loss" in e} == {1}  # the mode plan: catch-up, then crux
    assert {e["epoch"] for e in train if "s0.loss_cls" in e} == {2}
    (evaluated,) = [e for e in entries if e["mode"] == "val"]
    assert evaluated["epoch"] == 2 and {"bbox_mAP", "crux/mask_mean"} <= set(evaluated)

    checkpoint, stock_out, ours_out = str(work / "epoch_2.pth"), tmp_path / "mmdet.pkl", tmp_path / "lcp.pkl"
    mmdet_tool("test.py", str(repeat_config), checkpoint, "--out", str(stock_out))
    assert lcp(["test", LCP_TINY, checkpoint, "--out", str(ours_out), "--cfg-options", *scene_options(workspace)]) == 0
    stock, ours = pickle.loads(stock_out.read_bytes()), pickle.loads(ours_out.read_bytes())
    assert len(stock) == len(ours) == 1 and sum(len(boxes) for boxes in ours[0]) > 0
    for stock_boxes, our_boxes in zip(stock[0], ours[0], strict=True):
        np.testing.assert_array_equal(stock_boxes, our_boxes)


@pytest.fixture(scope="module")
def resumed(workspace, repeat_config, pretrained, lcp_run) -> Path:
    assert train_lcp(workspace, repeat_config, pretrained, "--auto-resume", "--cfg-options", "runner.max_epochs=3") == 0
    return lcp_run


def test_auto_resume_continues_with_the_mode_of_the_next_epoch(resumed):
    assert (resumed / "epoch_3.pth").is_file()
    assert (resumed / "latest.pth").resolve().name == "epoch_3.pth"
    epochs = [e["epoch"] for e in log_entries(resumed)]
    assert epochs.count(3) == 4 and epochs.count(1) == 4  # epochs 1-2 were not trained again
    third = [e for e in log_entries(resumed) if e["epoch"] == 3]
    assert all("kl_loss" in e for e in third)  # plan [1, 1, 2]: epoch 3 trains the catch-up learner
    log = "\n".join(p.read_text() for p in resumed.glob("*.log"))
    assert f"Resuming from {resumed / 'epoch_2.pth'}" in log


def test_a_work_dir_with_checkpoints_is_not_overwritten_without_a_resume_flag(
    workspace, repeat_config, pretrained, resumed, capsys
):
    assert train_lcp(workspace, repeat_config, pretrained) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"lcp train: error: {workspace / 'lcp'}: already holds checkpoints (newest epoch_3.pth); "
        "pass --auto-resume to continue that run, or choose another --work-dir"
    )


def test_auto_resume_refuses_a_work_dir_of_another_request(workspace, repeat_config, pretrained, resumed, capsys):
    """It resumed any run whose checkpoints loaded: another lr, another config, and one run
    was trained half with each. A longer run (runner.max_epochs) is the same run."""
    before = sorted(p.name for p in resumed.iterdir())
    extra = ("--auto-resume", "--cfg-options", "runner.max_epochs=3", "optimizer.lr=0.5")
    assert train_lcp(workspace, repeat_config, pretrained, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        f"lcp train: error: {resumed}: holds a run started with another cfg_options "
        f"({resumed / 'lcp-train-request.json'}); --auto-resume continues only the same run"
    ), err
    assert "\n" not in err and sorted(p.name for p in resumed.iterdir()) == before


def test_a_second_training_into_a_work_dir_a_training_runs_in_is_refused(
    workspace, repeat_config, pretrained, resumed, capsys
):
    """Two trainings in one work dir overwrote each other's checkpoints (a snakemake rerun while
    the first job still ran on SLURM)."""
    before = {p.name: p.stat().st_mtime_ns for p in resumed.iterdir()}
    holder = hold_training_lock(resumed)
    try:
        assert (
            train_lcp(workspace, repeat_config, pretrained, "--auto-resume", "--cfg-options", "runner.max_epochs=4")
            == 2
        )
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lcp train: error: {resumed}: another training is running in it (pid {holder.pid} on "), err
    assert {p.name: p.stat().st_mtime_ns for p in resumed.iterdir() if p.name != "lcp-train.lock"} == {
        name: mtime for name, mtime in before.items() if name != "lcp-train.lock"
    }


def test_auto_resume_of_a_published_run_trains_nothing_unless_it_is_longer(
    tmp_path, workspace, repeat_config, pretrained, resumed, capsys
):
    """A workflow training that finished while snakemake was being stopped is kept by the rerun
    (lcp.workflow.workdir.begin); `lcp train --auto-resume` then has nothing to train."""
    import shutil

    from lcp.workflow.workdir import finish

    work = tmp_path / "lcp"
    shutil.copytree(resumed, work, symlinks=True)
    finish(work, tmp_path / "published.pth")  # as the workflow's job does at its end

    def train(epochs):
        return lcp(
            ["train", str(repeat_config), "--work-dir", str(work), "--no-validate", "--auto-resume", "--cfg-options"]
            + [
                *scene_options(workspace),
                f"load_from={pretrained}",
                "data.train.dataset.dataset.pipeline.4.flip_ratio=0.0",
            ]
            + [f"runner.max_epochs={epochs}"]
        )

    before = {p.name: p.stat().st_mtime_ns for p in work.iterdir()}
    assert train(3) == 0
    assert f"lcp train: {work}: its run finished (epoch_3.pth); nothing to train" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in work.iterdir()} == before
    assert train(4) == 0  # a longer run of it goes on
    assert (work / "epoch_4.pth").is_file() and "nothing to train" not in capsys.readouterr().err


def test_a_killed_trainers_forked_workers_do_not_keep_its_work_dir_locked(tmp_path):
    """Data-loader workers are forked copies of the trainer and kept the lock's open file: after a
    kill -9 of the trainer (the OOM killer) the job's retry was refused, naming the dead pid, with
    the exit status that ends all later retries."""
    import signal
    import subprocess
    import sys

    from lcp.apis.training_lock import check_no_training

    trainer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys, time\nfrom lcp.apis.training_lock import training_lock\n"
            f"with training_lock({str(tmp_path)!r}):\n"
            "    if os.fork() == 0:  # a worker, started as it would be after the fork's handlers\n"
            "        print(os.getpid(), flush=True)\n        time.sleep(60)\n        os._exit(0)\n"
            "    time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    worker = int(trainer.stdout.readline())
    try:
        with pytest.raises(LCPError, match="another training is running in it"):
            check_no_training(tmp_path)
        trainer.send_signal(signal.SIGKILL)
        trainer.wait()
        os.kill(worker, 0)  # the worker still runs
        check_no_training(tmp_path)  # and holds no lock
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)


@pytest.mark.parametrize("keep", [("state_dict",), ("state_dict", "meta")], ids=["weights-only", "no-optimizer"])
def test_resume_from_a_checkpoint_without_training_state_is_refused(
    workspace, repeat_config, pretrained, resumed, tmp_path, capsys, keep
):
    """Weights alone were a KeyError('meta') traceback from mmcv's runner; weights and meta
    without the optimizer resumed silently without momentum."""
    import torch

    full = torch.load(resumed / "epoch_3.pth", map_location="cpu", weights_only=False)
    partial = tmp_path / "partial.pth"
    torch.save({key: full[key] for key in keep}, partial)
    work = tmp_path / "work"
    argv = ["train", str(repeat_config), "--work-dir", str(work), "--no-validate", "--resume-from", str(partial)]
    assert lcp([*argv, "--cfg-options", *scene_options(workspace), "runner.max_epochs=4"]) == 2
    lacking = "meta.epoch or optimizer" if keep == ("state_dict",) else "optimizer"
    assert capsys.readouterr().err.strip() == (
        f"lcp train: error: {partial}: not a training checkpoint to resume (no {lacking}); "
        "resume from one lcp train saved, or start from its weights with --load-from"
    )
    assert not work.exists()  # refused before the work dir got anything


def test_eval_json_has_the_coco_metrics_per_class(workspace, resumed):
    eval_out, raw_out = workspace / "eval.json", workspace / "results.pkl"
    checkpoint = str(resumed / "epoch_3.pth")
    assert (
        lcp(
            [
                "test",
                LCP_TINY,
                checkpoint,
                "--eval",
                "bbox",
                "--eval-out",
                str(eval_out),
                "--out",
                str(raw_out),
                "--cfg-options",
                *scene_options(workspace),
            ]
        )
        == 0
    )
    metrics = json.loads(eval_out.read_text())
    assert {"bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "classwise", "num_images", "config", "checkpoint"} <= set(metrics)
    assert metrics["num_images"] == 1 and metrics["checkpoint"] == checkpoint and metrics["config"] == LCP_TINY
    assert list(metrics["classwise"]) == CLASSES
    for value in [metrics["bbox_mAP"], metrics["bbox_mAP_50"], metrics["bbox_mAP_75"], *metrics["classwise"].values()]:
        assert value is None or 0.0 <= value <= 1.0
    results = pickle.loads(raw_out.read_bytes())
    assert len(results) == 1 and len(results[0]) == len(CLASSES)


def test_test_refuses_to_overwrite_outputs(workspace, resumed, capsys):
    eval_out = workspace / "existing.json"
    eval_out.write_text("{}")
    assert lcp(["test", LCP_TINY, str(resumed / "epoch_3.pth"), "--eval-out", str(eval_out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"lcp test: error: {eval_out}: already exists; remove it or pass --overwrite"
    )
    assert eval_out.read_text() == "{}"


def test_a_test_stopped_on_the_way_publishes_none_of_its_outputs(workspace, resumed, tmp_path, monkeypatch, capsys):
    """The pkl and the COCO results file were published as soon as they were made; a run stopped
    in the (long) drawing or evaluation after them left them beside an older run's metrics."""
    from lcp.apis import evaluation

    outputs = tmp_path / "out"
    outputs.mkdir()
    eval_out = outputs / "m.json"
    eval_out.write_text('{"old": true}')

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation, "coco_bbox_metrics", stopped)
    argv = ["test", LCP_TINY, str(resumed / "epoch_3.pth"), "--overwrite", "--eval-out", str(eval_out)]
    argv += ["--out", str(outputs / "r.pkl"), "--show-dir", str(outputs / "show")]
    argv += ["--eval-options", f"jsonfile_prefix={outputs / 'dets'}", "--cfg-options", *scene_options(workspace)]
    assert lcp(argv) == 130
    assert sorted(p.name for p in outputs.iterdir()) == ["m.json"] and eval_out.read_text() == '{"old": true}'

    monkeypatch.undo()
    (outputs / "dets.bbox.json").mkdir()  # a folder where a file goes: refused before any work
    assert lcp(argv) == 2
    assert capsys.readouterr().err.strip().endswith(f"{outputs / 'dets.bbox.json'}: is a folder, not a file")
    assert lcp([*argv[:4], "--eval-out", str(outputs / "new.json"), *argv[6:]]) == 2  # the folder still holds it
    (outputs / "dets.bbox.json").rmdir()
    assert lcp(argv) == 0
    assert sorted(p.name for p in outputs.iterdir()) == ["dets.bbox.json", "m.json", "r.pkl", "show"]
    assert "bbox_mAP" in json.loads(eval_out.read_text())


def test_a_show_folder_refused_at_the_end_publishes_no_other_output(workspace, resumed, tmp_path, monkeypatch, capsys):
    """The eval json was renamed into place before the show folder's last check refused it: the
    command failed and its metrics were published anyway, over the older ones."""
    from lcp.apis import inference

    outputs = tmp_path / "out"
    outputs.mkdir()
    eval_out = outputs / "m.json"
    eval_out.write_text('{"old": true}')
    draw = inference.draw_detections

    def another_run_makes_the_folder(*args, **kwargs):
        draw(*args, **kwargs)
        (outputs / "show").mkdir()
        (outputs / "show" / "theirs.jpg").write_bytes(b"not lcp's")

    monkeypatch.setattr(inference, "draw_detections", another_run_makes_the_folder)
    argv = ["test", LCP_TINY, str(resumed / "epoch_3.pth"), "--overwrite", "--eval-out", str(eval_out)]
    argv += ["--out", str(outputs / "r.pkl"), "--show-dir", str(outputs / "show")]
    assert lcp([*argv, "--cfg-options", *scene_options(workspace)]) == 2
    assert "show: already exists and holds no" in capsys.readouterr().err
    assert sorted(p.name for p in outputs.iterdir()) == ["m.json", "show"] and eval_out.read_text() == '{"old": true}'


def picture_difference(workspace, config, checkpoint, image: Path, out_dir: Path) -> tuple[dict, float]:
    """Infer with a score threshold no detection reaches: the picture differs from the image
    only by what is drawn besides boxes."""
    assert (
        lcp(
            [
                "infer",
                config,
                str(checkpoint),
                str(image),
                "--out-dir",
                str(out_dir),
                "--score-thr",
                "1.0",
                "--cfg-options",
                *scene_options(workspace),
            ]
        )
        == 0
    )
    detections = json.loads((out_dir / f"{image.stem}.json").read_text())
    picture = cv2.imread(str(out_dir / f"{image.stem}.jpg")).astype(np.float32)
    original = cv2.imread(str(image)).astype(np.float32)
    # a 128 px image is drawn at 4 times its size, its pixels repeated, so that labels can be read
    assert picture.shape == (512, 512, 3) and original.shape == (128, 128, 3)
    enlarged = cv2.resize(original, (512, 512), interpolation=cv2.INTER_NEAREST)
    return detections, float(np.abs(picture - enlarged).mean())


def test_infer_draws_the_crux_heat_map_for_lcp_and_only_boxes_for_a_plain_detector(workspace, resumed, pretrained):
    image = sorted((workspace / "demo" / "lowq").glob("*.jpg"))[0]
    lcp_json, lcp_difference = picture_difference(
        workspace, LCP_TINY, resumed / "epoch_3.pth", image, workspace / "infer_lcp"
    )
    plain_json, plain_difference = picture_difference(
        workspace, PLAIN_TINY, pretrained, image, workspace / "infer_plain"
    )
    assert lcp_json["detections"] == [] and plain_json["detections"] == []
    assert (lcp_json["width"], lcp_json["height"]) == (128, 128) and lcp_json["image"] == str(image)
    assert plain_difference < 3  # jpeg re-encoding only
    assert lcp_difference > 15


def test_infer_writes_boxes_above_the_threshold(workspace, resumed):
    image = sorted((workspace / "demo" / "lowq").glob("*.jpg"))[0]
    out_dir = workspace / "infer_all"
    assert (
        lcp(
            [
                "infer",
                LCP_TINY,
                str(resumed / "epoch_3.pth"),
                str(image.parent),
                "--out-dir",
                str(out_dir),
                "--score-thr",
                "0",
                "--cfg-options",
                *scene_options(workspace),
            ]
        )
        == 0
    )
    images = sorted((workspace / "demo" / "lowq").glob("*.jpg"))
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [f"{p.stem}.json" for p in images] + [f"{p.stem}.jpg" for p in images]
    )
    detections = json.loads((out_dir / f"{image.stem}.json").read_text())["detections"]
    assert detections, "an untrained tiny detector still proposes boxes at threshold 0"
    for detection in detections:
        assert detection["class"] in CLASSES and 0 <= detection["score"] <= 1
        x1, y1, x2, y2 = detection["bbox"]
        assert 0 <= x1 <= x2 <= 128 and 0 <= y1 <= y2 <= 128


def test_show_dir_draws_each_test_image_with_its_detections(workspace, pretrained, capsys):
    show_dir = workspace / "shown"
    command = [
        "test",
        PLAIN_TINY,
        str(pretrained),
        "--show-dir",
        str(show_dir),
        "--show-score-thr",
        "0",
        "--cfg-options",
        *scene_options(workspace),
        "model.test_cfg.rcnn.score_thr=0",
    ]
    assert lcp(command) == 0
    tested = json.loads((workspace / "demo" / "annotations" / "clean_test.json").read_text())["images"]
    assert sorted(p.name for p in show_dir.glob("*.jpg")) == sorted(image["file_name"] for image in tested)
    for image in tested:
        original = cv2.imread(str(workspace / "demo" / "clean" / image["file_name"])).astype(np.float32)
        drawn = cv2.imread(str(show_dir / image["file_name"])).astype(np.float32)
        assert drawn.shape == original.shape and np.abs(drawn - original).mean() > 3  # boxes, not re-encoding
    capsys.readouterr()
    assert lcp(command) == 2
    assert (
        capsys.readouterr().err.strip() == f"lcp test: error: {show_dir}: already exists; remove it or pass --overwrite"
    )
    assert lcp([*command, "--overwrite"]) == 0
    inside = workspace / "demo" / "clean" / "shown"
    assert (
        lcp(
            ["test", PLAIN_TINY, str(pretrained), "--show-dir", str(inside), "--cfg-options", *scene_options(workspace)]
        )
        == 2
    )
    assert "lies inside the source" in capsys.readouterr().err and not inside.exists()


def test_format_only_writes_coco_results_without_evaluating(workspace, pretrained, capsys):
    prefix = workspace / "submission"
    assert (
        lcp(
            [
                "test",
                PLAIN_TINY,
                str(pretrained),
                "--format-only",
                "--eval-options",
                f"jsonfile_prefix={prefix}",
                "--cfg-options",
                *scene_options(workspace),
                "model.test_cfg.rcnn.score_thr=0",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "AP" not in out and f"written to {prefix}.bbox.json" in out
    detections = json.loads(Path(f"{prefix}.bbox.json").read_text())
    tested = json.loads((workspace / "demo" / "annotations" / "clean_test.json").read_text())
    assert detections and {d["image_id"] for d in detections} <= {image["id"] for image in tested["images"]}
    for detection in detections:
        assert set(detection) == {"image_id", "bbox", "score", "category_id"} and detection["category_id"] in (1, 2, 3)
    assert lcp(["test", PLAIN_TINY, str(pretrained), "--format-only"]) == 2
    assert capsys.readouterr().err.strip() == (
        "lcp test: error: --format-only: give where the results go, "
        "--eval-options jsonfile_prefix=PREFIX (writes PREFIX.bbox.json)"
    )


def test_eval_options_set_the_iou_thresholds_and_keep_the_results_file(workspace, pretrained):
    eval_out, prefix = workspace / "eval_at_50.json", workspace / "kept"
    assert (
        lcp(
            [
                "test",
                PLAIN_TINY,
                str(pretrained),
                "--eval-out",
                str(eval_out),
                "--eval-options",
                "iou_thrs=0.5",
                f"jsonfile_prefix={prefix}",
                "--cfg-options",
                *scene_options(workspace),
            ]
        )
        == 0
    )
    metrics = json.loads(eval_out.read_text())
    assert metrics["eval_options"] == {"iou_thrs": [0.5], "jsonfile_prefix": str(prefix)}
    assert metrics["bbox_mAP"] == metrics["bbox_mAP_50"] and metrics["bbox_mAP_75"] is None
    assert isinstance(json.loads(Path(f"{prefix}.bbox.json").read_text()), list)
