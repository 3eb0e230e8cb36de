"""`lcp train --track` and `lcp test --track` on the tiny LCP config and a 3-image demo scene."""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from lcp.cli import main as lcp

LCP_TINY = str(Path(__file__).resolve().parents[1] / "config" / "mmdet" / "lcp_tiny_demo.py")


@pytest.mark.slow
def test_lcp_train_and_test_with_tracking(tmp_path, mlflow_server, monkeypatch, capsys):
    for name in ("MLFLOW_TRACKING_URI", "LCP_INVOCATION_ID", "LCP_MLFLOW_PARENT_RUN_IDS",
                 "LCP_SNAKEMAKE_RULE", "LCP_SNAKEMAKE_WILDCARDS"):
        monkeypatch.delenv(name, raising=False)
    assert lcp(["data", "demo", "--out", str(tmp_path / "demo"), "--num-images", "3", "--no-progress"]) == 0
    options = ["--cfg-options", f"data_root={tmp_path / 'demo'}/", "data.workers_per_gpu=0", "log_config.interval=1",
               "runner.max_epochs=2", "load_from=None", "evaluation.interval=1"]
    work_dir = tmp_path / "work"
    tracking = ["--tracking-uri", mlflow_server.uri, "--scene", "tinydemo"]
    assert lcp(["train", LCP_TINY, "--work-dir", str(work_dir), *tracking, *options]) == 0

    client = MlflowClient(mlflow_server.uri)
    experiment = client.get_experiment_by_name("lcp/tinydemo")
    (train_run,) = client.search_runs([experiment.experiment_id], "attributes.run_name = 'tinydemo/train/lcp'")
    run_id = train_run.info.run_id
    assert train_run.info.status == "FINISHED"
    params = train_run.data.params
    assert params["cfg.model.type"] == "LCPDetector" and params["method"] == "lcp"
    assert params["cfg.model.crux_learner.type"] == "CruxLearner"
    assert params["data.train.num_images"] == "2" and len(params["data.train.ann_sha256"]) == 64
    assert params["degradation.lowq.degradation"] == "fog"  # the demo's synthesis sidecar
    iterations = len(client.get_metric_history(run_id, "train/loss"))
    assert iterations == 2  # one batch of 2 images per epoch
    assert [m.step for m in client.get_metric_history(run_id, "train/kl_loss")] == [1]  # epoch 1: catch-up
    assert {m.step for m in client.get_metric_history(run_id, "train/s0.loss_cls")} == {2}  # epoch 2: crux
    assert sorted(m.step for m in client.get_metric_history(run_id, "val/bbox_mAP")) == [1, 2]
    assert train_run.data.tags["lcp.checkpoint"] == str((work_dir / "epoch_2.pth").resolve())
    heatmaps = [a.path for a in client.list_artifacts(run_id, "crux_heatmaps")]
    assert len(heatmaps) == 1 and heatmaps[0].endswith(".png")  # the demo's one test image

    eval_json = tmp_path / "eval.json"
    assert lcp(["test", LCP_TINY, str(work_dir / "latest.pth"), "--eval-out", str(eval_json), *tracking,
                *options]) == 0
    (eval_run,) = client.search_runs([experiment.experiment_id], "attributes.run_name = 'tinydemo/evaluate/lcp'")
    assert set(eval_run.data.metrics) >= {"test/bbox_mAP", "test/bbox_mAP_50", "test/bbox_mAP_75", "test/num_images"}
    assert eval_run.data.tags["lcp.checkpoint"] == str((work_dir / "latest.pth").resolve())

    capsys.readouterr()
    assert lcp(["compare", "--tracking-uri", mlflow_server.uri, "--experiment", "lcp/tinydemo",
                "--out-dir", str(tmp_path / "compare")]) == 0
    assert "| tinydemo | lcp |" in capsys.readouterr().out
