"""A training run logged through LCPMlflowLoggerHook to a real MLflow server, read back with MlflowClient."""

import hashlib
import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from helpers.tracking import make_coco, predictions, run_toy_training, toy_config
from lcp.apis.evaluation import coco_bbox_metrics
from lcp.tracking import add_tracking

LONG_NOTE = "x" * 7000  # longer than MLflow's 6000-character param limit: kept whole in the config artifact


@pytest.fixture
def tracking_env(monkeypatch, mlflow_server):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    monkeypatch.setenv("LCP_SNAKEMAKE_RULE", "train_lcp")
    monkeypatch.setenv("LCP_SNAKEMAKE_WILDCARDS", json.dumps({"scene": "toytrain"}))
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURMD_NODENAME", "node7")
    for name in ("LCP_INVOCATION_ID", "LCP_MLFLOW_PARENT_RUN_IDS"):
        monkeypatch.delenv(name, raising=False)
    return MlflowClient(mlflow_server.uri)


def the_run(client, experiment, name):
    experiment = client.get_experiment_by_name(experiment)
    runs = client.search_runs([experiment.experiment_id], filter_string=f"attributes.run_name = '{name}'")
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def history(client, run_id, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def toy_tracked_config(data, scene):
    """The toy training's config on a fresh toy data set, and the tracking hook's arguments for `scene`."""
    cfg = toy_config(data, make_coco(data))
    hook = add_tracking(cfg, scene=scene, step="train", method="lcp", num_heatmaps=0)
    return cfg, {k: v for k, v in hook.items() if k != "type"}


def test_training_run_logs_params_metrics_tags_and_artifacts(
    tmp_path, tracking_env, monkeypatch, caplog, mlflow_server
):
    client = tracking_env
    monkeypatch.setenv("LCP_REGISTER_MODEL", "1")
    ann_file = make_coco(tmp_path / "data")
    (tmp_path / "data" / "images" / "synthesis.json").write_text(
        json.dumps(
            {
                "tool": "lcp data synth",
                "degradation": "fog",
                "model": "atmospheric scattering",
                "config": {"beta": [0.02], "airlight": 0.8},
                "seed": 3,
                "images": {"a.png": {}, "b.png": {}},
            }
        )
    )
    cfg = toy_config(tmp_path / "data", ann_file, note=LONG_NOTE)
    hook = add_tracking(cfg, scene="toytrain", step="train", method="lcp", num_heatmaps=2)
    assert cfg.log_config.hooks[-1] is hook or cfg.log_config.hooks[-1] == hook
    assert hook["register_model"] is True  # from LCP_REGISTER_MODEL
    tracking = {k: v for k, v in hook.items() if k != "type"}
    tracking["system_metrics_secs"] = 0.2  # the toy trains for seconds
    _runner, model = run_toy_training(tmp_path / "work", cfg, tracking, epochs=3, iters_per_epoch=3)

    run = the_run(client, "lcp/toytrain", "toytrain/train/lcp")
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"

    experiment = client.get_experiment_by_name("lcp/toytrain")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # not the UI's GenAI view

    # a curated set of params; the whole config is the artifact config/config.py
    params = run.data.params
    assert params["scene"] == "toytrain" and params["method"] == "lcp" and params["step"] == "train"
    assert params["seed"] == "0" and params["gpus"] == "1"
    assert params["lr"] == "0.01" and params["optimizer"] == "SGD" and params["detector"] == "ToyDetector"
    assert params["batch_per_gpu"] == "2" and params["init.load_from"] == "none"
    assert not [key for key in params if key.startswith("cfg.")]
    assert len(params) < 50, sorted(params)  # not the ~400 cfg.* params of a flattened config
    assert params["data.test.ann_sha256"] == hashlib.sha256(ann_file.read_bytes()).hexdigest()
    assert params["data.test.num_images"] == "4"
    # keyed by the split, not the folder (images/): runs compare on their sets' degradation
    for split in ("train", "test"):
        assert params[f"degradation.{split}.degradation"] == "fog"
        assert params[f"degradation.{split}.config.airlight"] == "0.8"
        assert params[f"degradation.{split}.num_images"] == "2"
    assert not [key for key in params if key.startswith("degradation.images")]
    assert params["version.mlflow"] and params["version.mmdet"] == "2.28.2"
    assert len(params["git.commit"]) == 40 and params["git.dirty"] in ("true", "false")

    # dataset inputs: the annotation file with its sha256 (train = val = test here: one input)
    (dataset_input,) = run.inputs.dataset_inputs
    digest = hashlib.sha256(ann_file.read_bytes()).hexdigest()
    assert dataset_input.dataset.name == f"{ann_file.parent.name}/{ann_file.stem}"
    assert dataset_input.dataset.digest == digest[:16]
    assert json.loads(dataset_input.dataset.profile)["sha256"] == digest
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"

    # every log_config.interval (2) iterations of an epoch, at the global iteration, the mean of
    # the loss terms over those iterations, one series per training mode
    logged = model.logged
    assert len(logged) == 9

    def mean_loss(last_step):
        return pytest.approx((logged[last_step - 2]["loss"] + logged[last_step - 1]["loss"]) / 2)

    catch_up_steps = [2, 8]  # epochs 1 and 3 train the catch-up learner (3 iterations: one point each)
    assert history(client, run_id, "train/catch_up/loss") == [(step, mean_loss(step)) for step in catch_up_steps]
    assert history(client, run_id, "train/crux/loss") == [(5, mean_loss(5))]
    assert [s for s, _ in history(client, run_id, "train/catch_up/kl_loss")] == catch_up_steps
    assert [s for s, _ in history(client, run_id, "train/crux/s0.loss_cls")] == [5]
    assert not history(client, run_id, "train/loss") and not history(client, run_id, "train/kl_loss")
    # the text log's values at the same points (it rounds to 5 decimals)
    (log_json,) = (tmp_path / "work").glob("*.log.json")
    text_log = [entry for entry in map(json.loads, log_json.read_text().splitlines()) if entry.get("mode") == "train"]
    assert [entry["loss"] for entry in text_log] == pytest.approx(
        [
            v
            for _, v in sorted(
                history(client, run_id, "train/catch_up/loss") + history(client, run_id, "train/crux/loss")
            )
        ],
        abs=1e-5,
    )
    lr = history(client, run_id, "train/lr")
    assert [s for s, _ in lr] == [2, 5, 8]
    assert lr[0][1] == pytest.approx(0.01) and lr[-1][1] == pytest.approx(0.001)  # step decay after epoch 2
    assert all(v > 0 for _, v in history(client, run_id, "train/img_per_s"))
    assert history(client, run_id, "epoch/crux_learner_mode") == [(1, 0.0), (2, 1.0), (3, 0.0)]
    assert [s for s, _ in history(client, run_id, "epoch/img_per_s")] == [1, 2, 3]

    # per-epoch evaluation, overall and per class, equal to an independent COCO evaluation, in percent
    from mmdet.datasets import build_dataset

    dataset = build_dataset(cfg.data.test, {"test_mode": True})
    expected = coco_bbox_metrics(dataset, [predictions()[info["file_name"]] for info in dataset.data_infos])
    assert 0 < expected["classwise"]["square"] < expected["classwise"]["circle"]
    for key, name in (("bbox_mAP", "AP"), ("bbox_mAP_50", "AP50"), ("bbox_mAP_75", "AP75")):
        assert history(client, run_id, f"val/{name}") == [
            (e, pytest.approx(100 * expected[key], abs=1e-2)) for e in (1, 2, 3)
        ]
    for cls in ("circle", "square"):
        values = history(client, run_id, f"val/AP/{cls}")
        assert values == [(e, pytest.approx(100 * expected["classwise"][cls], abs=0.1)) for e in (1, 2, 3)]
    # 32-pixel images hold no large object: mmdet's -1 for AP_large is not plotted
    assert expected["bbox_mAP_l"] is None and not history(client, run_id, "val/AP_large")
    assert not [key for key in run.data.metrics if key.startswith("val/bbox")]

    # MLflow's system metrics monitor sampled the machine during training
    assert history(client, run_id, "system/cpu_utilization_percentage")
    assert history(client, run_id, "system/system_memory_usage_megabytes")

    tags = run.data.tags
    assert tags["mlflow.runName"] == "toytrain/train/lcp"
    assert tags["lcp.scene"] == "toytrain" and tags["lcp.step"] == "train" and tags["lcp.method"] == "lcp"
    assert tags["snakemake.rule"] == "train_lcp" and tags["snakemake.wildcard.scene"] == "toytrain"
    assert tags["slurm.job_id"] == "4242" and tags["slurm.node"] == "node7" and tags["host"]
    assert tags["lcp.train_mode.epoch_002"] == "crux_learner"
    assert tags["lcp.checkpoint"].endswith("epoch_3.pth")

    artifacts = {
        a.path for folder in ("config", "crux_heatmaps", "model", "logs") for a in client.list_artifacts(run_id, folder)
    }
    assert {
        "config/config.py",
        "crux_heatmaps/crux_a.png",
        "crux_heatmaps/crux_b.png",
        "model/epoch_3.pth",
        "logs/toy.log.json",
    } <= artifacts
    config_text = Path(client.download_artifacts(run_id, "config/config.py", str(tmp_path))).read_text()
    assert "CocoDataset" in config_text and LONG_NOTE in config_text

    # the final checkpoint is a version of the registered model of the scene and method
    (version,) = client.search_model_versions(f"name = 'lcp-toytrain-lcp' and run_id = '{run_id}'")
    assert version.source.endswith("/model")
    assert client.get_registered_model("lcp-toytrain-lcp").name == "lcp-toytrain-lcp"
    # the training log names the run and its page
    page = f"{mlflow_server.uri}/#/experiments/{experiment.experiment_id}/runs/{run_id}"
    assert f"MLflow run toytrain/train/lcp (id {run_id}): {page}" in caplog.text
    assert not (tmp_path / "work" / "mlflow-pending").exists()  # nothing had to wait


def test_resumed_training_continues_the_same_run(tmp_path, tracking_env, monkeypatch):
    client = tracking_env
    cfg, tracking = toy_tracked_config(tmp_path / "data", "toyresume")
    run_toy_training(tmp_path / "work", cfg, tracking, epochs=2, iters_per_epoch=2)

    # resumed by a later run of the workflow (its first was killed): the run moves under its parent
    experiment_id = client.get_experiment_by_name("lcp/toyresume").experiment_id
    parent = client.create_run(experiment_id, run_name="toyresume/workflow/later").info.run_id
    monkeypatch.setenv("LCP_INVOCATION_ID", "later")
    monkeypatch.setenv("LCP_MLFLOW_PARENT_RUN_IDS", json.dumps({"toyresume": parent}))
    runner, _ = run_toy_training(
        tmp_path / "work",
        cfg,
        tracking,
        epochs=3,
        iters_per_epoch=2,
        resume_from=str(tmp_path / "work" / "epoch_2.pth"),
    )
    assert runner.epoch == 3
    run = the_run(client, "lcp/toyresume", "toyresume/train/lcp")
    run_id = run.info.run_id
    # a point every 2 iterations (log_config.interval): one per epoch
    assert [s for s, _ in history(client, run_id, "train/catch_up/loss")] == [2, 6]  # epochs 1 and 3
    assert [s for s, _ in history(client, run_id, "train/crux/loss")] == [4]
    assert [s for s, _ in history(client, run.info.run_id, "epoch/crux_learner_mode")] == [1, 2, 3]
    assert "lcp.resumed_at_epoch.002" in run.data.tags
    assert run.data.tags["lcp.invocation_id"] == "later" and run.data.tags["mlflow.parentRunId"] == parent


@pytest.mark.parametrize(
    "error, status, said",
    [
        (KeyboardInterrupt(), "KILLED", "KILLED: KeyboardInterrupt"),
        (RuntimeError("out of memory\nTried to allocate 2 GiB"), "FAILED", "FAILED: RuntimeError: out of memory"),
    ],
)
def test_a_training_that_stops_ends_its_run_saying_why_with_its_log(tmp_path, tracking_env, error, status, said):
    """Ctrl-C was recorded as FAILED, like a crash, and neither said why nor kept the log."""
    from mmcv.runner import Hook

    class StopsInEpoch2(Hook):
        def before_train_iter(self, runner):
            if runner.epoch == 1:
                raise error

    client = tracking_env
    cfg, tracking = toy_tracked_config(tmp_path / "data", f"toy{status.lower()}")
    with pytest.raises(type(error)):
        run_toy_training(tmp_path / "work", cfg, tracking, epochs=3, iters_per_epoch=2, extra_hooks=[StopsInEpoch2()])
    run = the_run(client, f"lcp/toy{status.lower()}", f"toy{status.lower()}/train/lcp")
    assert run.info.status == status
    assert run.data.tags["lcp.stopped_in_epoch.002"] == said
    assert {a.path for a in client.list_artifacts(run.info.run_id, "logs")} == {"logs/toy.log.json"}


def test_a_failure_to_record_the_stop_does_not_replace_why_the_training_stopped(tmp_path, tracking_env, caplog):
    """A Ctrl-C (or SIGTERM) whose run record could not be written (here a folder where the file
    goes) came out as that LCPError: exit 2, which the workflow never retries, instead of 130."""
    from mmcv.runner import Hook

    class StopsInEpoch2(Hook):
        def before_train_iter(self, runner):
            if runner.epoch == 1:
                record = Path(runner.work_dir) / "mlflow-run.json"
                record.unlink()
                record.mkdir()
                raise KeyboardInterrupt

    client = tracking_env
    cfg, tracking = toy_tracked_config(tmp_path / "data", "toyunrecorded")
    with pytest.raises(KeyboardInterrupt):
        run_toy_training(tmp_path / "work", cfg, tracking, epochs=3, iters_per_epoch=2, extra_hooks=[StopsInEpoch2()])
    assert "mlflow-run.json: is a folder, not a file" in caplog.text  # said, as a warning
    run = the_run(client, "lcp/toyunrecorded", "toyunrecorded/train/lcp")
    assert run.info.status == "KILLED"
