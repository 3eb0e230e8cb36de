"""Training settings that mmcv accepts and then ignores, or that make a run lose its result
without a word: refused with one line naming the config and the key when they can only be a
mistake, said in the run's log when they can be deliberate (a short trial of a long schedule)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import mmdet.models  # noqa: F401  (torch's import-time warnings come here, not in a command's stderr)
import pytest

from lcp.apis.config import load_config
from lcp.apis.options import parse_cfg_options
from lcp.cli import main as lcp
from lcp.errors import LCPError

REPO = Path(__file__).resolve().parents[2]
PLAIN_TINY = str(REPO / "config" / "mmdet" / "cascade_rcnn_tiny_demo.py")

ADDS_NOTHING = "which neither mmdet nor lcp reads and no ${{{0}}} of the config refers to, so it would change nothing"
REFUSED = [
    (
        ["checkpoint_config=None"],
        "checkpoint_config=None saves no checkpoint, so the trained weights would be lost; "
        "keep it, e.g. --cfg-options checkpoint_config.interval=1",
    ),
    (
        ["runner.max_epochs=3", "checkpoint_config.interval=2", "+checkpoint_config.save_last=False"],
        "checkpoint_config.interval=2 with save_last=False saves no checkpoint of the last epoch "
        "(runner.max_epochs=3), so latest.pth would be an earlier one; drop save_last=False or give an "
        "interval that divides max_epochs",
    ),
    (
        ["+checkpoint_config.out_dir=/elsewhere"],
        "checkpoint_config.out_dir='/elsewhere' saves the checkpoints outside the work dir, where --auto-resume "
        "and the workflow's latest.pth look for them; give --work-dir on that disk instead",
    ),
    (
        ["log_config.hooks.0.type=MlflowLoggerHook"],
        "log_config.hooks: MlflowLoggerHook with log_model=True (its default) fails after the last epoch (MLflow 3's "
        "mlflow.pytorch.log_model wants an input example mmcv does not give); set log_model=False: the "
        "checkpoints are in the work dir",
    ),
    (
        ["custom_hooks.0.type=ExpMomentumEMAHook"],
        "custom_hooks.0 (ExpMomentumEMAHook) has priority 'NORMAL', so it swaps the averaged weights in after the "
        "epoch's checkpoint is saved (the checkpoint would hold the raw ones where the averaged ones belong, and a "
        "resumed run would go on from the averaged ones); give it priority=49, as mmdet's configs do",
    ),
    (["data.samples_per_gpu=0"], "data.samples_per_gpu=0 is not a count; give a whole number of 1 or more"),
    (["data.workers_per_gpu=-1"], "data.workers_per_gpu=-1 is not a count; give a whole number of 0 or more"),
    (
        ["+data.train_dataloader.samples_per_gpu=-2"],
        "data.train_dataloader.samples_per_gpu=-2 is not a count; give a whole number of 1 or more",
    ),
    (
        ["+crux_lr_mult=10"],
        "--cfg-options +crux_lr_mult: adds crux_lr_mult (a setting of LCP configs), "
        + ADDS_NOTHING.format("crux_lr_mult"),
    ),
    (
        ["+evaluation_interval=1"],
        "--cfg-options +evaluation_interval: adds evaluation_interval, " + ADDS_NOTHING.format("evaluation_interval"),
    ),
]


@pytest.mark.parametrize("options, problem", REFUSED, ids=[" ".join(options) for options, _ in REFUSED])
def test_a_setting_that_loses_the_run_or_does_nothing_is_refused_before_the_work_dir(
    options, problem, workspace, tmp_path, capsys
):
    argv = ["train", PLAIN_TINY, "--work-dir", str(tmp_path / "work"), "--cfg-options"]
    assert lcp([*argv, f"data_root={workspace / 'demo'}/", *options]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"lcp train: error: {PLAIN_TINY}: {problem}"
    assert not (tmp_path / "work").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None, reason="tensorboard is installed")
def test_a_logger_hook_whose_package_is_missing_is_refused_before_the_work_dir(workspace, tmp_path, capsys):
    """mmcv's TensorboardLoggerHook imports tensorboard once the run starts: a traceback after the
    work dir was made, which the workflow retried."""
    options = [f"data_root={workspace / 'demo'}/", "log_config.hooks.0.type=TensorboardLoggerHook"]
    assert lcp(["train", PLAIN_TINY, "--work-dir", str(tmp_path / "work"), "--cfg-options", *options]) == 2
    assert capsys.readouterr().err.strip() == (
        f"lcp train: error: {PLAIN_TINY}: log_config.hooks: TensorboardLoggerHook needs the Python package "
        "tensorboard, which is not installed; install it (pip install tensorboard) or drop the hook"
    )
    assert not (tmp_path / "work").exists()


def test_mmcvs_mlflow_hook_beside_lcps_tracking_is_refused_before_the_work_dir(workspace, tmp_path, capsys):
    """mmcv's MlflowLoggerHook logs through MLflow's active run, in $MLFLOW_TRACKING_URI or ./mlflow.db:
    a second run beside lcp's, with every loss again and the modes mixed."""
    options = [
        f"data_root={workspace / 'demo'}/",
        "log_config.hooks.0.type=MlflowLoggerHook",
        "+log_config.hooks.0.log_model=False",
    ]
    tracking = ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--scene", "demo"]
    argv = ["train", PLAIN_TINY, "--work-dir", str(tmp_path / "work"), *tracking, "--cfg-options", *options]
    assert lcp(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"lcp train: error: {PLAIN_TINY}: log_config.hooks: mmcv's MlflowLoggerHook would record a second MLflow "
        "run beside lcp's (in $MLFLOW_TRACKING_URI, else ./mlflow.db), the same losses again, unsplit by training "
        "mode; drop it (lcp's tracking records them), or train with --no-track"
    )
    assert not (tmp_path / "work").exists()


def test_a_custom_keys_entry_that_names_no_parameter_is_refused_before_training(workspace, tmp_path, capsys):
    options = [f"data_root={workspace / 'demo'}/", "+optimizer.paramwise_cfg.custom_keys.bakbone.lr_mult=0"]
    assert lcp(["train", PLAIN_TINY, "--work-dir", str(tmp_path / "work"), "--cfg-options", *options]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"lcp train: error: {PLAIN_TINY}: optimizer.paramwise_cfg.custom_keys.bakbone is in no parameter's name, "
        "so its {'lr_mult': 0} would apply to nothing; the model's modules are backbone, neck, rpn_head, roi_head"
    )
    assert not list((tmp_path / "work").glob("*.pth"))


def test_a_batch_size_given_in_data_and_in_its_loader_is_one_line_not_mmdets_assert(workspace, tmp_path, capsys):
    """mmdet's compat_cfg asserts on it: a traceback with exit 1, which the workflow retried."""
    options = [f"data_root={workspace / 'demo'}/", "+data.train_dataloader.samples_per_gpu=4"]
    assert lcp(["train", PLAIN_TINY, "--work-dir", str(tmp_path / "work"), "--cfg-options", *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(
        f"lcp train: error: {PLAIN_TINY}: the data loader cannot be built from its settings: `samples_per_gpu` are "
        "set in `data` field and ` data.train_dataloader` at the same time"
    ), err


def test_mmdets_swin_config_trains_with_a_custom_key_of_its_larger_variants_said_not_refused():
    """mmdet's Swin configs give absolute_pos_embed (a parameter of Swin with use_abs_pos_embed=True) a
    decay_mult beside keys that match; Swin-T has no such parameter, and mmdet trains it as published."""
    from mmcv import Config
    from mmdet.models import build_detector

    from lcp.apis.config import check_custom_keys

    config = Path(mmdet.__file__).parent / ".mim" / "configs" / "swin" / "mask_rcnn_swin-t-p4-w7_fpn_1x_coco.py"
    cfg = Config.fromfile(str(config))
    cfg.model.backbone.init_cfg = None  # no download: the weights are not looked at
    assert check_custom_keys(build_detector(cfg.model), cfg.optimizer, "swin.py") == [
        "swin.py: optimizer.paramwise_cfg.custom_keys.absolute_pos_embed is in no parameter's name; its "
        "{'decay_mult': 0.0} applies to nothing in this model"
    ]


def test_a_schedule_cut_short_says_what_it_does_not_reach_in_the_log(workspace, tmp_path):
    """The demo's step at 6, warm-up of 20 iterations and evaluation every 4th epoch, in a run of 1 epoch
    (of 1 iteration: the 3-image demo's 2 training images make one batch)."""
    work = tmp_path / "work"
    options = [f"data_root={workspace / 'demo'}/", "runner.max_epochs=1"]
    assert lcp(["train", PLAIN_TINY, "--work-dir", str(work), "--cfg-options", *options]) == 0
    assert (work / "latest.pth").is_file()  # said, not refused
    (log,) = work.glob("*.log")
    warnings = [line.split(" - WARNING - ", 1)[1] for line in log.read_text().splitlines() if " - WARNING - " in line]
    assert warnings == [
        f"{PLAIN_TINY}: lr_config.step=[6]: the lr never decays at [6] (runner.max_epochs=1; "
        "a step at epoch N applies from epoch N+1)",
        f"{PLAIN_TINY}: lr_config.warmup_iters=20 outlasts the whole training (runner.max_epochs=1 x 1 iterations "
        "per epoch = 1 iterations): the lr never reaches optimizer.lr",
        f"{PLAIN_TINY}: evaluation.interval=4 evaluates none of the 1 epochs (runner.max_epochs): no validation AP "
        "and no best checkpoint; lower it, or pass --no-validate to train without evaluation",
    ]


@pytest.mark.parametrize(
    "evaluation, setting",
    [
        (dict(interval=4), "evaluation.interval=4"),
        (dict(interval=4, start=0), "evaluation.interval=4"),
        (dict(interval=1, start=5), "evaluation.start=5"),
    ],
)
def test_an_evaluation_past_the_last_epoch_names_the_setting_that_puts_it_there(evaluation, setting):
    """start=0 evaluates before training and then every `interval` epochs: the interval is the one too long."""
    from mmcv import Config

    from lcp.apis.config import schedule_warnings

    cfg = Config(dict(runner=dict(max_epochs=3), evaluation=evaluation))
    assert schedule_warnings(cfg, "my.py") == [
        f"my.py: {setting} evaluates none of the 3 epochs (runner.max_epochs): no validation AP and no best "
        "checkpoint; lower it, or pass --no-validate to train without evaluation"
    ]


def test_the_published_and_workflow_schedules_give_no_warning():
    import yaml

    from lcp.apis.config import schedule_warnings
    from lcp.workflow.commands import mmcv_value

    runs = [(str(path), []) for path in sorted((REPO / "config" / "mmdet").glob("*.py"))]
    # every step of every scene of the workflow's own config.yaml (the demo's shortened schedules)
    scenes = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["scenes"]
    steps = [scene[step] for scene in scenes.values() for step in ("pretrain", "baseline", "lcp") if step in scene]
    runs += [
        (str(REPO / step["config"]), [f"{key}={mmcv_value(value)}" for key, value in step["cfg_options"].items()])
        for step in steps
        if step.get("cfg_options")
    ]
    assert sum(bool(options) for _, options in runs) >= 3  # the demo's pretrain, baseline and lcp
    for config, options in runs:
        cfg = load_config(config, parse_cfg_options(options))
        assert schedule_warnings(cfg, config, iters_per_epoch=64) == [], (config, options)


def test_the_workflow_preflight_refuses_a_checkpoint_setting_that_skips_the_last_epoch(tmp_path, monkeypatch):
    from lcp.workflow import preflight

    monkeypatch.chdir(tmp_path)  # its record of passed checks goes here
    preflight._check_config.cache_clear()
    preflight._passed_checks.cache_clear()
    options = ["runner.max_epochs=3", "checkpoint_config.interval=2", "+checkpoint_config.save_last=False"]
    with pytest.raises(LCPError) as refused:
        preflight.check_model_step(PLAIN_TINY, options, {}, where="scenes.demo.baseline")
    assert str(refused.value).startswith(
        f"scenes.demo.baseline.config: {PLAIN_TINY}: checkpoint_config.interval=2 with save_last=False"
    )
