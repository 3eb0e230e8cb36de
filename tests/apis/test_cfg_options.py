"""--cfg-options are checked against the config before anything runs: an unknown key (with the
nearest existing one suggested) or a value of the wrong kind is one line and exit status 2
from every command that reads a model config; `+KEY=VALUE` adds what the config lacks."""

from __future__ import annotations

import re
from pathlib import Path

import mmdet.models  # noqa: F401  (torch's import-time warnings come here, not in a command's stderr)
import pytest

from lcp.apis.config import load_config, read_config
from lcp.apis.options import parse_cfg_options
from lcp.cli import main as lcp
from lcp.errors import LCPError

REPO = Path(__file__).resolve().parents[2]
LCP_TINY = str(REPO / "config" / "mmdet" / "lcp_tiny_demo.py")
PLAIN_TINY = str(REPO / "config" / "mmdet" / "cascade_rcnn_tiny_demo.py")


def one_error_line(capsys, argv: list[str]) -> str:
    assert lcp(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "\n" not in err, err
    return err


def command_line(command: str, workspace: Path, tmp_path: Path) -> list[str]:
    """`lcp COMMAND` on the tiny LCP config, with inputs that exist (the config is read first)."""
    checkpoint = tmp_path / "model.pth"
    checkpoint.write_bytes(b"not read: the config fails first")
    return {
        "train": ["train", LCP_TINY, "--work-dir", str(tmp_path / "work")],
        "test": ["test", LCP_TINY, str(checkpoint), "--eval", "bbox"],
        "infer": [
            "infer",
            LCP_TINY,
            str(checkpoint),
            str(workspace / "demo" / "lowq"),
            "--out-dir",
            str(tmp_path / "out"),
        ],
        "heatmaps": ["heatmaps", LCP_TINY, str(checkpoint), "--out-dir", str(tmp_path / "maps")],
    }[command]


def with_option(command: str, workspace, tmp_path, option: str) -> list[str]:
    """command_line's `lcp COMMAND` on the workspace's demo scene with one more --cfg-options OPTION."""
    return command_line(command, workspace, tmp_path) + ["--cfg-options", f"data_root={workspace / 'demo'}/", option]


@pytest.mark.parametrize("command", ["train", "test", "infer", "heatmaps"])
def test_misspelt_key_is_refused_by_every_command_with_the_nearest_key(command, workspace, tmp_path, capsys):
    argv = with_option(command, workspace, tmp_path, "optimzer.lr=0.5")
    assert one_error_line(capsys, argv) == (
        f"lcp {command}: error: {LCP_TINY}: --cfg-options optimzer.lr: the config has no key optimzer "
        "(did you mean optimizer.lr?), and neither mmdet nor lcp reads one"
    )  # not "write +optimzer.lr=VALUE": a +KEY nothing reads is refused too
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists() and not (tmp_path / "maps").exists()


BAD_OPTIONS = [
    (
        "runner.max_epoch=1",
        (
            "runner.max_epoch: the config has no key runner.max_epoch (did you mean runner.max_epochs?); "
            "to add a new key, write +runner.max_epoch=VALUE"
        ),
    ),
    (
        "model.backbone.frozen_stage=2",
        (
            "model.backbone.frozen_stage: the config has no key model.backbone.frozen_stage "
            "(did you mean model.backbone.frozen_stages?); to add a new key, write +model.backbone.frozen_stage=VALUE"
        ),
    ),
    ("runner.max_epochs=abc", "runner.max_epochs: takes a number (the config has 4), not a text ('abc')"),
    ("runner.max_epochs=[1,2]", "runner.max_epochs: takes a number (the config has 4), not a list of numbers ([1, 2])"),
    ("find_unused_parameters=1", "find_unused_parameters: takes true/false (the config has True), not a number (1)"),
    ("data_root=7", "data_root: takes a text (the config has 'data/demo/'), not a number (7)"),
    (
        "mode_plan.num_epoch=[a,b]",
        "mode_plan.num_epoch: takes a list of numbers (the config has [1, 1, 2]), not a list of texts (['a', 'b'])",
    ),
    (
        "custom_hooks.4.interval=2",
        (
            "custom_hooks.4.interval: custom_hooks is a list of 4 items; pick one by its number, custom_hooks.0 to "
            "custom_hooks.3"
        ),
    ),
    (
        "custom_hooks.hook.interval=2",
        (
            "custom_hooks.hook.interval: custom_hooks is a list of 4 items; pick one by its number, custom_hooks.0 to "
            "custom_hooks.3"
        ),
    ),
    ("img_scale.0=256", "img_scale.0: img_scale is a tuple (128, 128); set it whole, e.g. img_scale=(a,b)"),
    (
        "model=cascade",
        (
            "model: model is a group of settings (type, backbone, neck, rpn_head, roi_head, train_cfg, test_cfg, "
            "crux_learner, kl_loss_weight, start_as_pretrained, graph_capture); set them one by one, "
            "e.g. model.type=VALUE"
        ),
    ),
    (
        "runner.max_epochs.value=3",
        ("runner.max_epochs.value: runner.max_epochs is a number (4), not a group of settings with a key value"),
    ),
    (
        "optimizer_config.grad_clip.max_norm=35",
        (
            "optimizer_config.grad_clip.max_norm: optimizer_config.grad_clip is None in the config; "
            "to give it settings, "
            "write +optimizer_config.grad_clip.max_norm=VALUE"
        ),
    ),
    ("model..depth=50", "model..depth: not a KEY or dotted KEY.SUBKEY (an empty part)"),
]


@pytest.mark.parametrize("option, message", BAD_OPTIONS, ids=[option for option, _ in BAD_OPTIONS])
def test_bad_option_stops_lcp_train_before_anything_runs(option, message, tmp_path, capsys):
    argv = ["train", LCP_TINY, "--work-dir", str(tmp_path / "work"), "--cfg-options", option]
    assert one_error_line(capsys, argv) == f"lcp train: error: {LCP_TINY}: --cfg-options {message}"
    assert not (tmp_path / "work").exists()


def test_options_of_the_right_kind_are_merged():
    cfg = read_config(
        LCP_TINY,
        parse_cfg_options(
            [
                "runner.max_epochs=6",
                "optimizer.lr=1",  # an int for a float
                "lr_config.step=3",  # one step for a list of steps (mmcv takes both)
                "mode_plan.num_epoch=[1,1,4]",
                "classes=[a,b]",
                "num_classes=2",
                "load_from=None",
                "model.backbone.frozen_stages=2",
                "data.train.dataset.pipeline.4.flip_ratio=0.0",
            ]
        ),
        import_modules=False,
    )
    assert (cfg.runner.max_epochs, cfg.optimizer.lr, cfg.lr_config.step) == (6, 1, 3)
    assert cfg.mode_plan.num_epoch == [1, 1, 4] and cfg.classes == ["a", "b"] and cfg.load_from is None
    assert cfg.model.backbone.frozen_stages == 2 and cfg.data.train.dataset.pipeline[4].flip_ratio == 0.0


def test_plus_adds_keys_the_config_lacks():
    cfg = read_config(
        PLAIN_TINY,
        parse_cfg_options(
            [
                "+fp16.loss_scale=512",  # a whole new group
                "+optimizer_config.grad_clip.max_norm=35",  # settings under a None
                "+model.backbone.with_cp=True",  # a new argument of an existing component
                "+runner.max_epochs=2",  # + on an existing key sets it as usual
            ]
        ),
        import_modules=False,
    )
    assert cfg.fp16 == {"loss_scale": 512} and cfg.optimizer_config.grad_clip == {"max_norm": 35}
    assert cfg.model.backbone.with_cp is True and cfg.runner.max_epochs == 2
    # still checked where the key exists
    with pytest.raises(LCPError, match=r"--cfg-options \+runner.max_epochs: takes a number"):
        read_config(PLAIN_TINY, parse_cfg_options(["+runner.max_epochs=abc"]), import_modules=False)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("runner = dict(max_epochs=2\n", ":1: not valid Python ('(' was never closed)"),
        (
            f"_base_ = [{LCP_TINY!r}]\nrunner = dict(max_epochs=epochs)\n",
            ": cannot read the config (NameError: name 'epochs' is not defined)",
        ),
    ],
)
def test_unreadable_config_is_one_line(text, problem, tmp_path, capsys):
    config = tmp_path / "broken.py"
    config.write_text(text)
    argv = ["train", str(config), "--work-dir", str(tmp_path / "work")]
    assert one_error_line(capsys, argv) == f"lcp train: error: {config}{problem}"  # no 'Exception ignored' either


BAD_EVAL_OPTIONS = [
    (
        "iou_thr=0.5",
        (
            "--eval-options iou_thr: not an evaluation setting lcp test takes (did you mean iou_thrs? "
            "it takes jsonfile_prefix, iou_thrs; class-wise AP is always computed)"
        ),
    ),
    (
        "iou_thrs=abc",
        ("--eval-options iou_thrs=abc: takes IoU thresholds in (0, 1], e.g. iou_thrs=0.5 or iou_thrs=[0.5,0.75]"),
    ),
    (
        "iou_thrs=[0.5,1.5]",
        ("--eval-options iou_thrs=[0.5,1.5]: takes IoU thresholds in (0, 1], e.g. iou_thrs=0.5 or iou_thrs=[0.5,0.75]"),
    ),
    ("jsonfile_prefix=", "--eval-options jsonfile_prefix=: takes a path prefix, not ''"),
    ("classwise", "--eval-options 'classwise': expected KEY=VALUE"),
]


@pytest.mark.parametrize("option, message", BAD_EVAL_OPTIONS, ids=[option for option, _ in BAD_EVAL_OPTIONS])
def test_bad_eval_option_stops_lcp_test_before_anything_runs(option, message, tmp_path, capsys):
    checkpoint = tmp_path / "model.pth"
    checkpoint.write_bytes(b"not read: the option fails first")
    argv = ["test", LCP_TINY, str(checkpoint), "--eval", "bbox", "--eval-options", option]
    assert one_error_line(capsys, argv) == f"lcp test: error: {message}"


def test_auto_scale_lr_needs_the_batch_the_lr_is_for(tmp_path, capsys):
    argv = [
        "train",
        PLAIN_TINY,
        "--work-dir",
        str(tmp_path / "work"),
        "--auto-scale-lr",
        "--cfg-options",
        "auto_scale_lr.base_batch_size=None",
    ]
    assert one_error_line(capsys, argv) == (
        f"lcp train: error: {PLAIN_TINY}: --auto-scale-lr needs auto_scale_lr.base_batch_size, the total batch the "
        "config's lr is for; add it, e.g. --cfg-options +auto_scale_lr.base_batch_size=16"
    )
    assert not (tmp_path / "work").exists()


def test_mode_plan_is_one_named_key_that_reaches_the_hook():
    for config in (LCP_TINY, str(REPO / "config" / "mmdet" / "lcp_r50_urpc.py")):
        cfg = load_config(config, parse_cfg_options(["mode_plan.num_epoch=[1,1,4]"]))
        hook = next(hook for hook in cfg.custom_hooks if hook.type == "TrainModeHook")
        assert hook.num_epoch == [1, 1, 4] and hook.modes == ["catch_up_learner", "crux_learner", "alter"]


def refused_training(capsys, tmp_path, option: str) -> str:
    """The one line `lcp train` of the tiny LCP config with `option` stops with, before its work dir."""
    line = one_error_line(capsys, ["train", LCP_TINY, "--work-dir", str(tmp_path / "work"), "--cfg-options", option])
    assert not (tmp_path / "work").exists()
    return line


def test_the_old_list_position_of_the_mode_plan_is_refused_naming_the_key(tmp_path, capsys):
    assert refused_training(capsys, tmp_path, "custom_hooks.1.num_epoch=[1,1,4]") == (
        f"lcp train: error: {LCP_TINY}: custom_hooks.1 (TrainModeHook) has num_epoch=[1, 1, 4], which ignores the "
        "config's mode_plan; set the plan there (--cfg-options mode_plan.num_epoch=[1,1,4]) and leave the hook's "
        "num_epoch='${mode_plan.num_epoch}'"
    )


def test_a_config_whose_own_hook_list_would_ignore_mode_plan_is_refused(tmp_path):
    config = tmp_path / "mine.py"
    config.write_text(
        f"_base_ = [{LCP_TINY!r}]\ncustom_hooks = [dict(type='TrainModeHook', num_epoch=[2, 2], "
        "modes=['crux_learner', 'alter'])]\n"
    )
    with pytest.raises(LCPError, match=r"custom_hooks.0 \(TrainModeHook\) has num_epoch=\[2, 2\], which ignores"):
        read_config(config, import_modules=False)


def test_configs_that_give_the_hook_its_plan_still_load(tmp_path):
    """The authors' style (no mode_plan, the plan in the hook) and a work dir's resolved copy of a config."""
    authors = tmp_path / "authors.py"
    authors.write_text(
        "custom_hooks = [dict(type='TrainModeHook', num_epoch=[6, 6, 12], "
        "modes=['catch_up_learner', 'crux_learner', 'alter'])]\n"
    )
    assert read_config(authors, import_modules=False).custom_hooks[0].num_epoch == [6, 6, 12]
    resolved = tmp_path / "lcp_tiny_demo.py"
    resolved.write_text(load_config(LCP_TINY, parse_cfg_options(["mode_plan.num_epoch=[1,1,4]"])).pretty_text)
    assert read_config(resolved, import_modules=False).custom_hooks[1].num_epoch == [1, 1, 4]


def test_a_value_whose_spaces_mmcv_would_drop_is_refused(tmp_path, capsys):
    """mmcv's DictAction removes every space: the checkpoints went to /tmp/myckpts without a word."""
    assert refused_training(capsys, tmp_path, "+checkpoint_config.out_dir=/tmp/my ckpts") == (
        "lcp train: error: --cfg-options +checkpoint_config.out_dir: '/tmp/my ckpts' would be read as '/tmp/myckpts': "
        "mmcv's --cfg-options removes spaces; set such a value in a config file instead"
    )


@pytest.mark.parametrize("command", ["train", "test", "infer", "heatmaps"])
def test_an_image_size_of_zero_is_refused_by_every_command_naming_the_setting(command, workspace, tmp_path, capsys):
    """img_scale=(0, 0) ended in OpenCV's "Assertion failed inv_scale_x > 0" traceback from the first image."""
    argv = with_option(command, workspace, tmp_path, "img_scale=(0,0)")
    assert one_error_line(capsys, argv) == (
        f"lcp {command}: error: {LCP_TINY}: img_scale=(0, 0) is not an image size; give two whole numbers above 0, "
        "e.g. img_scale=(1333, 800), or a list of such sizes"
    )
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists() and not (tmp_path / "maps").exists()


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory) -> Path:
    """The tiny plain detector untrained, saved as `lcp train` would: enough for `lcp test` to run."""
    import torch
    from mmdet.models import build_detector

    path = tmp_path_factory.mktemp("checkpoint") / "untrained.pth"
    model = build_detector(load_config(PLAIN_TINY).model)
    torch.save({"state_dict": model.state_dict(), "meta": {"CLASSES": ("circle", "square", "triangle")}}, path)
    return path


@pytest.mark.parametrize(
    "line, setting",
    [
        ("img_scale = (-128, 128)", "img_scale=(-128, 128)"),
        ("img_scale = (128.5, 128)", "img_scale=(128.5, 128)"),
        ("img_scale = [(128, 128), (0, 64)]", "img_scale=[(128, 128), (0, 64)]"),
        (
            "data = dict(test=dict(pipeline=[dict(type='LoadImageFromFile'), "
            "dict(type='MultiScaleFlipAug', img_scale=(128, 0), flip=False, transforms=[dict(type='Resize', "
            "keep_ratio=False), dict(type='ImageToTensor', keys=['img']), dict(type='Collect', keys=['img'])])]))",
            "data.test.pipeline.1.img_scale=(128, 0)",
        ),
    ],
    ids=["negative", "fraction", "one-of-several", "a-pipeline-step"],
)
def test_an_image_size_opencv_cannot_resize_to_is_refused_naming_the_config_file(
    line, setting, workspace, untrained_checkpoint, tmp_path, capsys
):
    config = tmp_path / "sized.py"
    config.write_text(f"_base_ = [{PLAIN_TINY!r}]\n{line}\n")
    eval_json = tmp_path / "eval.json"
    argv = ["test", str(config), str(untrained_checkpoint), "--eval-out", str(eval_json), "--no-track"]
    key = setting.split("=")[0]
    assert one_error_line(capsys, [*argv, "--cfg-options", f"data_root={workspace / 'demo'}/"]) == (
        f"lcp test: error: {config}: {setting} is not an image size; give two whole numbers above 0, "
        f"e.g. {key}=(1333, 800), or a list of such sizes"
    )
    assert not eval_json.exists()


@pytest.mark.parametrize(
    "value, said",
    [
        (
            "optimizer_config.grad_clip=dict(max_norm=35,norm_type=2)",
            "--cfg-options optimizer_config.grad_clip: 'dict(max_norm=35,norm_type=2)': --cfg-options takes no "
            "dict(...); set its keys one by one, e.g. +optimizer_config.grad_clip.max_norm=35 "
            "+optimizer_config.grad_clip.norm_type=2",
        ),
        ("runner.max_epochs=(1", "--cfg-options runner.max_epochs: '(1': unbalanced ()"),
    ],
)
def test_a_value_mmcv_cannot_read_is_one_line_not_a_recursion(value, said, tmp_path, capsys):
    """mmcv's parser recursed until Python gave up on dict(...), which lcp's own divergence message
    once advised."""
    argv = ["train", LCP_TINY, "--work-dir", str(tmp_path / "work"), "--cfg-options", value]
    assert one_error_line(capsys, argv).endswith(said)
    assert not (tmp_path / "work").exists()


def test_the_divergence_message_advises_an_option_that_works():
    from lcp.hooks.divergence import divergence_message

    said = divergence_message(3, 7, {"loss": float("nan")}, ["backbone.layer3.0.conv1.weight"], 0.02)
    options = re.search(r"--cfg-options (\S+?)\)", said).group(1).split()
    cfg = read_config(PLAIN_TINY, parse_cfg_options(options), import_modules=False)
    assert cfg.optimizer_config.grad_clip == {"max_norm": 35}
