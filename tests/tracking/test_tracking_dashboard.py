"""What makes MLflow read as a training dashboard: metric units and names, curated params, and the
dataset inputs and model registration a run queues while its server is down, replayed exactly once
to a real `mlflow server` on 127.0.0.1."""

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from helpers.mlflow_server import free_port
from lcp.apis.config import load_config
from lcp.errors import LCPError
from lcp.tracking import settings
from lcp.tracking.journal import Journal
from lcp.tracking.metrics import evaluation_metrics, loss_series
from lcp.tracking.params import dataset_inputs, training_params
from lcp.tracking.replay import replay
from lcp.tracking.run import TrackedRun

CONFIGS = Path(__file__).resolve().parents[2] / "config" / "mmdet"


def test_ap_is_logged_in_percent_and_nothing_to_measure_is_left_out():
    metrics = {
        "bbox_mAP": 0.305,
        "bbox_mAP_50": 0.5,
        "bbox_mAP_75": 0.0,
        "bbox_mAP_s": -1.0,
        "bbox_mAP_m": None,
        "bbox_mAP_l": float("nan"),
        "classwise": {"car": 0.4, "bus": None, "van": -1},
        "crux_health": {"mask_mean": 0.01, "collapsed": True},
        "num_images": 32,
        "config": "x.py",
    }
    assert evaluation_metrics(metrics) == {
        "test/AP": pytest.approx(30.5),
        "test/AP50": 50.0,
        "test/AP75": 0.0,
        "test/AP/car": pytest.approx(40.0),
        "test/crux_mask_mean": 0.01,
        "test/num_images": 32.0,
    }


def test_each_training_mode_has_its_own_loss_series():
    assert loss_series("kl_loss", "catch_up_learner") == "train/catch_up/kl_loss"
    assert loss_series("loss", "crux_learner") == "train/crux/loss"
    assert loss_series("loss", None) == "train/loss"  # a detector without modes (the baseline)


def test_curated_params_of_the_published_urpc_config():
    params = training_params(load_config(str(CONFIGS / "lcp_r50_urpc.py")))
    assert params["detector"] == "LCPDetector" and params["optimizer"] == "SGD"
    assert params["kl_loss_weight"] == "100" and params["crux_lr_mult"] == "100"
    assert params["epochs"] == "24" and params["batch_per_gpu"] == "2"
    assert params["mode_plan"] == "6 catch_up_learner, 6 crux_learner, 12 alter"
    assert params["init.load_from"].endswith(".pth") and params["init.backbone"]
    assert json.loads(params["image_scale"]) and len(params) <= 12


def test_dataset_inputs_are_named_by_their_data_set_also_for_a_robustness_set(tmp_path):
    """A sweep's test set was named beta_0.02_test: the same name in every scene with that sweep."""
    coco = {"images": [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 8}], "annotations": [], "categories": []}
    files = [
        tmp_path / "demo" / "annotations" / "lowq_test.json",
        tmp_path / "robustness" / "demo" / "beta_0.02_test.json",
    ]
    for path in files:
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(coco))
    data = {
        split: {"type": "CocoDataset", "ann_file": str(path)}
        for split, path in zip(("val", "test"), files, strict=True)
    }
    names = [entry["name"] for entry in dataset_inputs(data, {"val": "evaluation", "test": "evaluation"})]
    assert names == ["demo/lowq_test", "demo/beta_0.02_test"]


def test_lcp_detection_favoured_annotations_are_params_and_a_dataset_input(tmp_path):
    """LCP trains on a second annotation file (DFPairedDataset's df_ann_file, the clean set's train
    split): it is fingerprinted and a training input like the low-quality one."""
    from lcp.tracking.params import data_params

    coco = {"images": [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 8}], "annotations": [], "categories": []}
    for name in ("lowq_train", "clean_train"):
        path = tmp_path / "demo" / "annotations" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(coco))
    data = {
        "train": {
            "type": "DFPairedDataset",
            "data_root": f"{tmp_path}/",
            "df_img_prefix": "demo/clean/",
            "df_ann_file": "demo/annotations/clean_train.json",
            "dataset": {
                "type": "CocoDataset",
                "data_root": f"{tmp_path}/",
                "ann_file": "demo/annotations/lowq_train.json",
                "img_prefix": "demo/lowq/",
            },
        }
    }
    params = data_params(data)
    assert params["data.train.ann_file"].endswith("lowq_train.json")  # same key as the baseline's
    assert params["data.train.df.ann_file"].endswith("clean_train.json")
    assert len(params["data.train.df.ann_sha256"]) == 64 and params["data.train.df.num_images"] == "1"
    names = sorted(entry["name"] for entry in dataset_inputs(data, {"train": "training"}))
    assert names == ["demo/clean_train", "demo/lowq_train"]


def test_register_model_switch_and_name(monkeypatch):
    monkeypatch.delenv("LCP_REGISTER_MODEL", raising=False)
    assert settings.register_model_wanted() is False
    monkeypatch.setenv("LCP_REGISTER_MODEL", "yes")
    assert settings.register_model_wanted() is True and settings.register_model_wanted(False) is False
    monkeypatch.setenv("LCP_REGISTER_MODEL", "sometimes")
    with pytest.raises(LCPError, match=r"\$LCP_REGISTER_MODEL: expected 1/true/yes or 0/false/no, got 'sometimes'"):
        settings.register_model_wanted()
    assert settings.registered_model_name("foggy_city", "lcp") == "lcp-foggy_city-lcp"


def test_inputs_and_registration_queued_while_the_server_is_down_are_replayed_once(
    tmp_path, monkeypatch, mlflow_server
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("LCP_REGISTER_MODEL", raising=False)
    annotations = tmp_path / "data" / "annotations"
    annotations.mkdir(parents=True)
    (annotations / "fog_train.json").write_text(json.dumps({"images": [{"id": 1}, {"id": 2}], "annotations": []}))
    data = {
        "train": {
            "type": "CocoDataset",
            "data_root": str(tmp_path / "data"),
            "ann_file": "annotations/fog_train.json",
            "img_prefix": "fog/",
        }
    }
    checkpoint = tmp_path / "latest.pth"
    checkpoint.write_bytes(b"weights")

    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    run = TrackedRun(
        experiment="lcp/dashqueue",
        run_name="dashqueue/train/lcp",
        work_dir=tmp_path / "work",
        tracking_uri=dead,
        flush_secs=0.0,
        retry_secs=3600.0,
    ).start()
    assert not run.online and "not created yet" in run.where()
    run.log_inputs(dataset_inputs(data, {"train": "training"}))
    run.log_artifact(checkpoint, "model")
    run.register_model("lcp-dashqueue-lcp", "model", description="dashqueue/train/lcp: latest.pth")
    run.finish("FINISHED")
    journal = Journal(run.journal.path)
    assert [r["op"] for r in journal.read().pending] == [
        "create_run",
        "inputs",
        "artifact",
        "register_model",
        "terminate",
    ]

    result = replay(journal, mlflow_server.uri)
    assert result.remaining == 0 and result.sent == 5
    client = MlflowClient(mlflow_server.uri)
    experiment = client.get_experiment_by_name("lcp/dashqueue")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    logged = client.get_run(result.run_id)
    (dataset_input,) = logged.inputs.dataset_inputs
    assert dataset_input.dataset.name == "data/fog_train"
    assert json.loads(dataset_input.dataset.profile)["num_images"] == "2"
    assert json.loads(dataset_input.dataset.source)["uri"] == (annotations / "fog_train.json").as_uri()
    (version,) = client.search_model_versions("name = 'lcp-dashqueue-lcp'")
    assert version.run_id == result.run_id and version.source.endswith("/model")

    # the same record sent again (a replay whose acknowledgement was lost) makes no second version
    from lcp.tracking.sender import Sender

    Sender(client).register_model(result.run_id, "lcp-dashqueue-lcp", "model", None)
    assert len(client.search_model_versions("name = 'lcp-dashqueue-lcp'")) == 1
    assert replay(journal, mlflow_server.uri).sent == 0
