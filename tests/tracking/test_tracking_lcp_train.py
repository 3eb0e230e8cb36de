"""`lcp train --track` and `lcp test --track` on the tiny LCP config and a 3-image demo scene."""

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from lcp.cli import main as lcp

LCP_TINY = str(Path(__file__).resolve().parents[2] / "config" / "mmdet" / "lcp_tiny_demo.py")


@pytest.mark.slow
def test_lcp_train_and_test_with_tracking(tmp_path, mlflow_server, monkeypatch):
    for name in (
        "MLFLOW_TRACKING_URI",
        "LCP_INVOCATION_ID",
        "LCP_MLFLOW_PARENT_RUN_IDS",
        "LCP_SNAKEMAKE_RULE",
        "LCP_SNAKEMAKE_WILDCARDS",
    ):
        monkeypatch.delenv(name, raising=False)
    assert lcp(["data", "demo", "--out", str(tmp_path / "demo"), "--num-images", "3", "--no-progress"]) == 0
    options = [
        "--cfg-options",
        f"data_root={tmp_path / 'demo'}/",
        "data.workers_per_gpu=0",
        "log_config.interval=1",
        "runner.max_epochs=2",
        "load_from=None",
        "evaluation.interval=1",
    ]
    work_dir = tmp_path / "work"
    tracking = ["--tracking-uri", mlflow_server.uri, "--scene", "tinydemo"]
    assert lcp(["train", LCP_TINY, "--work-dir", str(work_dir), *tracking, *options]) == 0

    client = MlflowClient(mlflow_server.uri)
    experiment = client.get_experiment_by_name("lcp/tinydemo")
    (train_run,) = client.search_runs([experiment.experiment_id], "attributes.run_name = 'tinydemo/train/lcp'")
    run_id = train_run.info.run_id
    assert train_run.info.status == "FINISHED"
    params = train_run.data.params
    assert params["detector"] == "LCPDetector" and params["method"] == "lcp"
    assert params["kl_loss_weight"] == "100" and params["crux_lr_mult"] == "10" and params["lr"] == "0.02"
    assert params["mode_plan"] == "1 catch_up_learner, 1 crux_learner, 2 alter" and params["epochs"] == "2"
    assert params["image_scale"] == "[128, 128]" and params["init.load_from"] == "none"
    assert params["data.train.num_images"] == "2" and len(params["data.train.ann_sha256"]) == 64
    inputs = {i.dataset.name: i for i in train_run.inputs.dataset_inputs}
    # the detection-favoured images LCP draws from are a training input too
    assert set(inputs) == {"demo/lowq_train", "demo/lowq_test", "demo/clean_train"}
    assert inputs["demo/lowq_train"].dataset.digest == params["data.train.ann_sha256"][:16]
    assert inputs["demo/clean_train"].dataset.digest == params["data.train.df.ann_sha256"][:16]
    assert [(t.key, t.value) for t in inputs["demo/lowq_test"].tags] == [("mlflow.data.context", "evaluation")]
    assert params["degradation.train.degradation"] == "fog"  # the demo's synthesis sidecar
    # one batch of 2 images per epoch; epoch 1 trains the catch-up learner, epoch 2 the crux learner
    assert [m.step for m in client.get_metric_history(run_id, "train/catch_up/kl_loss")] == [1]
    assert [m.step for m in client.get_metric_history(run_id, "train/crux/loss")] == [2]
    assert {m.step for m in client.get_metric_history(run_id, "train/crux/s0.loss_cls")} == {2}
    assert sorted(m.step for m in client.get_metric_history(run_id, "val/AP")) == [1, 2]
    assert train_run.data.tags["lcp.checkpoint"] == str((work_dir / "epoch_2.pth").resolve())
    heatmaps = [a.path for a in client.list_artifacts(run_id, "crux_heatmaps")]
    assert len(heatmaps) == 1 and heatmaps[0].endswith(".png")  # the demo's one test image

    # CruxHealthHook (in the config's custom_hooks): per-epoch mask statistics as in the json log
    (log_json,) = work_dir.glob("*.log.json")
    logged = {
        entry["epoch"]: entry
        for entry in map(json.loads, log_json.read_text().splitlines())
        if "crux/mask_mean" in entry
    }
    assert sorted(logged) == [1, 2]
    for name in ("mask_mean", "mask_std", "mask_frac_above_half", "mask_spatial_std"):
        history = client.get_metric_history(run_id, f"epoch/crux_{name}")
        assert [m.step for m in history] == [1, 2], name
        assert [m.value for m in history] == pytest.approx(
            [logged[1][f"crux/{name}"], logged[2][f"crux/{name}"]], abs=1e-4
        )
    grad_norm = client.get_metric_history(run_id, "epoch/crux_grad_norm")
    assert [m.step for m in grad_norm] == [2] and grad_norm[0].value > 0  # gradients in the crux epoch only
    assert not [name for name in train_run.data.metrics if name.startswith("val/crux")]
    health = train_run.data.tags["lcp.crux_health"]
    assert health in ("alive", "collapsed")
    assert (health == "collapsed") == train_run.data.tags.get("lcp.crux_verdict", "").startswith(
        "crux learner collapsed: "
    )

    eval_json = tmp_path / "eval.json"
    assert lcp(["test", LCP_TINY, str(work_dir / "latest.pth"), "--eval-out", str(eval_json), *tracking, *options]) == 0
    (eval_run,) = client.search_runs([experiment.experiment_id], "attributes.run_name = 'tinydemo/evaluate/lcp'")
    assert set(eval_run.data.metrics) >= {"test/AP", "test/AP50", "test/AP75", "test/num_images"}
    assert eval_run.data.metrics["test/AP"] == pytest.approx(100 * json.loads(eval_json.read_text())["bbox_mAP"])
    (test_input,) = eval_run.inputs.dataset_inputs
    assert test_input.dataset.name == "demo/lowq_test"
    assert [a.path for a in client.list_artifacts(eval_run.info.run_id, "config")] == ["config/config.py"]
    assert eval_run.data.tags["lcp.checkpoint"] == str((work_dir / "latest.pth").resolve())
    assert "init.load_from" not in eval_run.data.params  # the test config's load_from never reached the model
    assert eval_run.data.params["degradation.test.degradation"] == "fog"  # its test set's, not its training's
    assert not [key for key in eval_run.data.params if key.startswith("degradation.train")]
    eval_health = json.loads(eval_json.read_text())["crux_health"]
    for name in ("mask_mean", "mask_std", "mask_frac_above_half", "mask_spatial_std"):
        assert eval_run.data.metrics[f"test/crux_{name}"] == pytest.approx(eval_health[name])
    assert eval_run.data.tags["lcp.crux_health"] == ("collapsed" if eval_health["collapsed"] else "alive")
    assert eval_run.data.tags.get("lcp.crux_verdict") == eval_health["verdict"]
