"""What a tracked training records, computed from the runner's values without a runner: the metrics of a
logging point, an epoch and an evaluation, images/s, the final checkpoint and the resume record."""

import json
import os
from types import SimpleNamespace

import pytest

from lcp.modes import CATCH_UP, CRUX
from lcp.tracking.run_file import RUN_FILE, previous_run, save_run_file
from lcp.tracking.throughput import Throughput
from lcp.tracking.training_record import epoch_metrics, epoch_tags, eval_metrics, final_checkpoint, iteration_metrics


def test_a_logging_point_has_one_loss_series_per_learner_and_mmcvs_lr_names_shortened():
    losses = {"kl_loss": 0.5, "loss": 0.75}
    schedule = {"learning_rate/backbone": 0.01, "learning_rate/crux_learner": 1.0, "momentum/backbone": 0.9}
    assert iteration_metrics(losses, schedule, CATCH_UP, 12.5) == {
        "train/catch_up/kl_loss": 0.5,
        "train/catch_up/loss": 0.75,
        "train/lr/backbone": 0.01,
        "train/lr/crux_learner": 1.0,
        "train/momentum/backbone": 0.9,
        "train/img_per_s": 12.5,
    }
    plain = iteration_metrics({"loss_cls": 1}, {"learning_rate": 0.02, "momentum": 0.9}, None, None)
    assert plain == {"train/loss_cls": 1.0, "train/lr": 0.02, "train/momentum": 0.9}  # no rate: none logged


def test_an_epoch_says_which_learner_trained_only_for_a_model_with_modes():
    crux = epoch_metrics(
        train_mode=CRUX, train_time=4.0, images=10, peak_gpu_mem_mib=None, crux_stats={"mask_mean": 0.25}
    )
    assert crux == {
        "epoch/train_time_s": 4.0,
        "epoch/img_per_s": 2.5,
        "epoch/crux_learner_mode": 1.0,
        "epoch/crux_mask_mean": 0.25,
    }
    catch_up = epoch_metrics(train_mode=CATCH_UP, train_time=0.0, images=0, peak_gpu_mem_mib=512.0, crux_stats={})
    assert catch_up == {"epoch/crux_learner_mode": 0.0, "epoch/peak_gpu_mem_mib": 512.0}  # nothing timed
    assert epoch_metrics(train_mode=None, train_time=0.0, images=0, peak_gpu_mem_mib=None, crux_stats={}) == {}
    assert epoch_tags(CRUX, 7) == {"lcp.train_mode.epoch_007": "crux_learner"}
    assert epoch_tags(None, 7) == {}


def test_evaluation_metrics_leave_out_training_values_timings_and_crux_statistics():
    buffer = {
        "bbox_mAP": 0.312,
        "bbox_mAP_s": -1.0,
        "loss": 0.4,
        "time": 0.2,
        "crux/mask_mean": 0.1,
        "recall": 0.5,
        "per_class": {"car": 0.25},
        "note": "text",
    }
    assert eval_metrics(buffer, train_keys={"loss"}, classwise={"bus": 0.5, "van": None}) == {
        "val/AP": pytest.approx(31.2),
        "val/recall": 0.5,
        "val/AP/car": 25.0,
        "val/AP/bus": 50.0,
    }


def test_images_per_second_are_timed_from_the_first_iteration_of_each_epoch():
    ticks = iter([100.0, 101.0, 103.0, 200.0, 204.0])
    throughput = Throughput(clock=lambda: next(ticks))
    throughput.start_epoch()
    throughput.before_iteration()  # 100: the epoch starts here, not at start_epoch
    throughput.after_iteration(2)  # 101
    throughput.before_iteration()  # already timed: no clock read
    throughput.after_iteration(4)  # 103
    assert throughput.point_rate() == pytest.approx(2.0)  # 6 images in 3 s
    assert throughput.point_rate() is None  # nothing since the last point
    assert throughput.epoch_time() == pytest.approx(3.0) and throughput.epoch_images == 6
    throughput.start_epoch()
    throughput.before_iteration()  # 200
    throughput.after_iteration(8)  # 204
    assert throughput.point_rate() == pytest.approx(2.0) and throughput.epoch_time() == pytest.approx(4.0)


def test_an_iteration_based_training_without_epochs_is_timed_too():
    ticks = iter([10.0, 12.0])
    throughput = Throughput(clock=lambda: next(ticks))
    throughput.before_iteration()
    throughput.after_iteration(4)
    assert throughput.point_rate() == pytest.approx(2.0)


def test_the_final_checkpoint_is_latests_target_else_the_newest_epoch(tmp_path):
    assert final_checkpoint(tmp_path) is None
    for epoch, mtime in ((1, 100), (2, 300), (3, 200)):
        (tmp_path / f"epoch_{epoch}.pth").write_bytes(b"w")
        os.utime(tmp_path / f"epoch_{epoch}.pth", (mtime, mtime))
    assert final_checkpoint(tmp_path) == (tmp_path / "epoch_2.pth").resolve()
    (tmp_path / "latest.pth").symlink_to("epoch_1.pth")
    assert final_checkpoint(tmp_path) == (tmp_path / "epoch_1.pth").resolve()


def test_a_resumed_training_finds_only_its_own_undamaged_run_record(tmp_path):
    run = SimpleNamespace(
        run_key="k1", run_id="r1", run_name="demo/train/lcp", experiment="lcp/demo", tracking_uri="sqlite:///x.db"
    )
    assert previous_run(tmp_path, "demo/train/lcp") is None
    save_run_file(tmp_path, run)
    assert previous_run(tmp_path, "demo/train/lcp") == {
        "run_key": "k1",
        "run_id": "r1",
        "run_name": "demo/train/lcp",
        "experiment": "lcp/demo",
        "tracking_uri": "sqlite:///x.db",
    }
    assert previous_run(tmp_path, "demo/train/baseline") is None  # another run's record
    # a run started before run names carried the seed (demo/train/lcp/seed1) goes on when resumed
    assert previous_run(tmp_path, "demo/train/lcp/seed1")["run_id"] == "r1"
    assert previous_run(tmp_path, "demo/train/lcp/beta_0.02") is None
    (tmp_path / RUN_FILE).write_text('{"run_key": ')
    assert previous_run(tmp_path, "demo/train/lcp") is None  # damaged
    (tmp_path / RUN_FILE).write_text(json.dumps(["demo/train/lcp"]))
    assert previous_run(tmp_path, "demo/train/lcp") is None  # not a record


def test_a_damaged_run_record_is_said_when_the_resumed_training_starts_a_new_run(tmp_path, caplog):
    """An empty mlflow-run.json (a node's crash after its rename) split a resumed training over two
    MLflow runs without a word: its first epochs, and their best val/AP, missing from the second."""
    (tmp_path / RUN_FILE).write_text("")
    assert previous_run(tmp_path, "demo/train/lcp") is None
    assert f"{tmp_path / RUN_FILE}: not valid JSON" in caplog.text
    assert "the resumed training starts a new run" in caplog.text
