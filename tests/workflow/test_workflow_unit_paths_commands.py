"""lcp.workflow's paths and command lines, from config/config.yaml's scenes, without Snakemake."""

import re
import shlex
from pathlib import Path

import pytest

from helpers.workflow import repo_config
from lcp.errors import LCPError
from lcp.workflow import commands, inputs, paths, scenes
from lcp.workflow.converters import SYNTHESIS_PATH_OPTIONS, converter_options, option_paths
from lcp.workflow.scenes import severities


@pytest.fixture
def config():
    return repo_config()


def test_seed_folders_exist_only_where_a_scene_trains_several_seeds(config):
    assert paths.seed_dir(config, "urpc", 0) == ""
    assert paths.seed_dir(config, "demo", 1) == "seed1/"
    assert paths.trained(config, "urpc", "lcp", 0) == "results/urpc/lcp/latest.pth"
    assert paths.trained(config, "demo", "lcp", 2) == "results/demo/lcp/seed2/latest.pth"
    assert paths.seed_of_dir(config, "demo", "lcp", "seed2/") == 2
    with pytest.raises(
        LCPError,
        match=r"results/demo/lcp/seed7/: scene demo trains seeds \[0, 1, 2\] "
        r"\(scenes.demo.seeds\), in seed<N>/ folders",
    ):
        paths.seed_of_dir(config, "demo", "lcp", "seed7/")
    with pytest.raises(LCPError, match="in the method's folder itself"):
        paths.seed_of_dir(config, "urpc", "baseline", "seed0/")


def test_path_patterns_keep_the_wildcards_for_rules():
    assert paths.checkpoint("{scene}", "baseline", "{seed_dir}") == "results/{scene}/baseline/{seed_dir}latest.pth"
    assert paths.work_dir("{scene}", "pretrain") == "results/{scene}/pretrain/work"
    assert paths.log("{scene}", "{seed_dir}evaluate_{method}") == "results/{scene}/logs/{seed_dir}evaluate_{method}.log"
    assert (
        paths.robustness_evaluation("s", "lcp", "seed1/", "beta_0.02")
        == "results/s/lcp/seed1/robustness/beta_0.02.json"
    )
    assert paths.dataset_log("city", "convert_x") == "results/datasets/city/logs/convert_x.log"


def test_synthesised_sets_live_apart_from_their_converted_scene_folder(config):
    assert paths.image_set_paths(config, "custom", "clear") == {
        "images": "custom/clear",
        "train": "custom/annotations/clear_train.json",
        "test": "custom/annotations/clear_test.json",
    }
    assert paths.image_set_paths(config, "custom", "foggy") == {
        "images": "synthesized/custom/foggy",
        "train": "synthesized/custom/foggy_train.json",
        "test": "synthesized/custom/foggy_test.json",
    }
    # a demo scene's generator makes its whole folder: a job reads the folder
    assert paths.image_set_files(config, "demo", "lowq") == ["data/demo"]
    assert paths.image_set_files(config, "foggy_city", "city_images", ["test"]) == [
        "data/city/city_images",
        "data/city/annotations/city_images_test.json",
    ]


def test_a_scene_without_a_sweep_has_no_robustness_report(config):
    assert "results/urpc/report/robustness.csv" not in paths.report_targets(config, "urpc")
    demo = paths.report_targets(config, "demo")
    assert "results/demo/report/robustness.png" in demo
    assert demo[-paths.HEATMAPS :] == paths.heatmaps("demo")


def test_building_a_scene_asks_for_every_result_the_report_is_made_of(config):
    """A file deleted by hand, or by snakemake after a failed or killed job, was never remade."""
    targets = inputs.scene_targets(config, "demo")
    seeds = config["scenes"]["demo"]["seeds"]
    assert set(paths.report_targets(config, "demo")) < set(targets)
    assert {"results/demo/data/check.json", "results/demo/pretrain/latest.pth"} < set(targets)
    for method in ("baseline", "lcp"):
        for seed in seeds:
            folder = f"results/demo/{method}/seed{seed}/" if len(seeds) > 1 else f"results/demo/{method}/"
            assert {folder + "latest.pth", folder + "eval.json"} < set(targets)
            assert all(folder + f"robustness/{severity}.json" in targets for severity in severities(config, "demo"))
    assert len(targets) == len(set(targets))


def test_converters_declare_classes_seed_and_path_options_through_their_parsers():
    cityscapes, urpc, yolo = (converter_options(fmt) for fmt in ("cityscapes", "urpc", "yolo"))
    assert (cityscapes.takes_classes, cityscapes.takes_seed) == (True, False)  # Cityscapes keeps its own split
    assert (urpc.takes_classes, urpc.takes_seed) == (False, True)  # URPC's classes are fixed
    assert cityscapes.path_options == {"foggy", "rainy"}
    assert yolo.path_options == {"labels", "names", "test-list"}
    options = {"labels": "/y/labels", "test-fraction": 0.2, "depth-dir": "/d"}
    assert option_paths(options, "scenes.x.image_sets.y", yolo.path_options) == {
        "scenes.x.image_sets.y.options.labels": "/y/labels"
    }
    assert option_paths(options, "k", SYNTHESIS_PATH_OPTIONS) == {"k.options.depth-dir": "/d"}


def test_convert_arguments_add_classes_and_seed_only_where_the_format_takes_them(config):
    assert shlex.split(commands.convert_args(config, "city", "foggy_city_images")) == [
        "cityscapes",
        "/datasets/cityscapes",
        "data/city",
        "--name",
        "foggy_city_images",
        "--classes",
        "bicycle,bus,person,train,truck,motorcycle,car,rider",
        "--foggy",
        "/datasets/foggy_cityscapes",
        "--beta",
        "0.02",
    ]
    assert shlex.split(commands.convert_args(config, "urpc", "dfui")) == [
        "urpc",
        "/datasets/DFUI",
        "data/urpc",
        "--name",
        "dfui",
        "--seed",
        "0",
    ]
    config["scenes"]["custom"]["image_sets"]["clear"]["options"]["seed"] = 7
    assert shlex.split(commands.convert_args(config, "custom", "clear")) == [
        "voc",
        "/datasets/my_voc",
        "data/custom",
        "--name",
        "clear",
        "--classes",
        "person,car",
        "--test-fraction",
        "0.2",
        "--seed",
        "7",
    ]


def test_a_list_for_an_option_given_once_per_value_repeats_the_flag(config):
    # `--rename a=x b=y` failed in the job: "unrecognized arguments: b=y"
    config["scenes"]["custom"]["image_sets"]["clear"] = {
        "convert": "coco",
        "path": "/datasets/coco",
        "options": {"train": "/a.json", "test": "/b.json", "rename": ["traffic light=light", "stop sign=sign"]},
    }
    assert shlex.split(commands.convert_args(config, "custom", "clear"))[-4:] == [
        "--rename",
        "traffic light=light",
        "--rename",
        "stop sign=sign",
    ]


def test_command_options_spell_flags_lists_and_floats():
    options = {"beta": 0.02, "no-clear": True, "skip": False, "rain-alpha": [0.01, 0.02], "count": 3}
    assert commands.command_options(options) == [
        "--beta",
        "0.02",
        "--no-clear",
        "--rain-alpha",
        "0.01",
        "0.02",
        "--count",
        "3",
    ]


def test_synthesis_and_robustness_sets_read_the_clean_set(config):
    assert shlex.split(commands.synthesize_args(config, "custom", "foggy")) == [
        "fog",
        "--src",
        "data/custom/clear",
        "--out",
        "data/synthesized/custom/foggy",
        "--ann",
        "data/custom/annotations/clear_train.json",
        "--ann-out",
        "data/synthesized/custom/foggy_train.json",
        "--ann",
        "data/custom/annotations/clear_test.json",
        "--ann-out",
        "data/synthesized/custom/foggy_test.json",
        "--seed",
        "0",
        "--beta",
        "0.02",
    ]
    words = shlex.split(commands.robustness_args(config, "demo", "beta_0.08"))
    assert words[:2] == ["fog", "--src"] and words[-4:] == ["--beta", "0.08", "--depth-dir", "data/demo/depth"]


def test_every_sweep_value_gets_its_own_test_set_and_reaches_synth_exactly(config):
    """%g named 0.08123441 and 0.08123442 alike (one severity vanished, the value rounded)
    and 1e6 beta_1e+06, which no rule could make."""
    values = [0.02, 0.08123441, 0.08123442, 1e6]
    config["scenes"]["demo"]["robustness"]["sweep"] = {"beta": values}
    names = scenes.severities(config, "demo")
    assert names == ["beta_0.02", "beta_0.08123441", "beta_0.08123442", "beta_1e06"]
    assert all(re.fullmatch(scenes.NAME_PATTERN, name) for name in names)
    passed = [float(shlex.split(commands.robustness_args(config, "demo", name))[-3]) for name in names]
    assert passed == values


def test_training_and_test_runs_get_the_scene_sets_as_cfg_options(config):
    words = shlex.split(commands.train_args(config, "urpc", "lcp", 0))
    assert words[:5] == [
        "config/mmdet/lcp_r50_urpc.py",
        "--seed",
        "0",
        "--load-from",
        "results/urpc/pretrain/latest.pth",
    ]
    assert "df_img_dir=urpc/dfui/" in words and "train_ann=urpc/annotations/urpc_train.json" in words
    # LCP draws its detection-favoured images from the clean set's train split only
    assert "df_ann=urpc/annotations/dfui_train.json" in words
    pretrain = shlex.split(commands.train_args(config, "urpc", "pretrain", 0))
    assert "--load-from" not in pretrain and "train_img_dir=urpc/dfui/" in pretrain
    test = shlex.split(commands.test_args(config, "demo", "baseline", 1, "beta_0.02"))
    assert test[:3] == ["config/mmdet/cascade_rcnn_tiny_demo.py", "results/demo/baseline/seed1/latest.pth", "--eval"]
    assert "test_ann=robustness/demo/beta_0.02_test.json" in test
    assert "test_ann=demo/annotations/lowq_test.json" in shlex.split(commands.test_args(config, "demo", "lcp", 0))


def test_a_yaml_list_in_cfg_options_is_valid_and_reaches_mmcv_as_a_list(config):
    # a list was refused by the schema without a word on how to write it
    from snakemake.utils import validate

    config["scenes"]["demo"]["lcp"]["cfg_options"].update({"mode_plan.num_epoch": [1, 1, 4], "lr_config.step": [5]})
    validate(config, str(scenes.SCHEMA))
    words = shlex.split(commands.train_args(config, "demo", "lcp", 0))
    assert "mode_plan.num_epoch=[1,1,4]" in words and "lr_config.step=[5]" in words


def test_the_keys_a_step_may_not_set_are_those_the_workflow_sets(config):
    # lcp.workflow.checks refuses scenes.*.cfg_options of scenes.WORKFLOW_CFG_OPTIONS: the two lists must agree
    for step in scenes.STEPS:
        config["scenes"]["demo"][step]["cfg_options"] = {}
    given = {option.split("=")[0] for step in scenes.STEPS for option in commands.cfg_options(config, "demo", step)}
    assert given == set(scenes.WORKFLOW_CFG_OPTIONS)


def test_reports_read_every_method_and_seed(config):
    evaluations = commands.report_evaluations(config, "demo")
    assert evaluations["lcp/seed2"] == "results/demo/lcp/seed2/eval.json" and len(evaluations) == 6
    assert commands.report_evaluations(config, "urpc") == {
        "baseline": "results/urpc/baseline/eval.json",
        "lcp": "results/urpc/lcp/eval.json",
    }
    sweep = commands.robustness_evaluations(config, "demo")
    assert sweep["baseline/seed0@beta_0.08"] == "results/demo/baseline/seed0/robustness/beta_0.08.json"
    assert len(sweep) == 2 * 3 * 2
    report = inputs.report_inputs(config, "demo")
    assert set(report) == {*evaluations, "check", "samples", "code"}
    # the code that renders the tables: a fix to it remakes the reports
    assert {Path(path).name for path in report["code"]} >= {"metrics.py", "plots.py", "html.py", "report.py"}
    assert all(Path(path).is_file() for path in report["code"])


def test_training_inputs_name_the_sets_each_step_reads(config):
    assert inputs.training_sets(config, "urpc", "pretrain") == ["dfui"]
    assert inputs.training_sets(config, "urpc", "baseline") == ["urpc"]
    assert inputs.training_sets(config, "urpc", "lcp") == ["dfui", "urpc"]
    named = inputs.training_inputs(config, "urpc", "baseline")
    assert named["init"] == "results/urpc/pretrain/latest.pth" and named["check"] == "results/urpc/data/check.json"
    assert "init" not in inputs.training_inputs(config, "urpc", "pretrain")
    robustness = inputs.evaluation_inputs(config, "demo", "lcp", 0, "beta_0.02")
    assert robustness["data"] == ["data/robustness/demo/beta_0.02", "data/robustness/demo/beta_0.02_test.json"]
    # an edit to a file the config inherits from (its schedule, two levels of _base_ down) reruns
    # the training and the evaluations: Snakemake compares the inputs' times
    schedule = "config/mmdet/_base_/schedules/lcp_24e.py"
    assert schedule in inputs.training_inputs(config, "demo", "lcp")["bases"]
    assert schedule in robustness["bases"]
    assert (
        "config/mmdet/_base_/models/cascade_rcnn_r50_fpn.py"
        in inputs.training_inputs(config, "urpc", "baseline")["bases"]
    )


def test_a_jobs_shell_runs_its_commands_with_their_output_in_the_log():
    shell = commands.job_command("lcp report metrics", " && lcp tracking log-artifacts")
    # a refused job is not run again (preflight.UNFIXABLE_FUNCTIONS, defined for every job)
    assert (
        shell
        == "lcp_not_again {log}; (lcp report metrics && lcp tracking log-artifacts) > {log} 2>&1 || lcp_failed {log} $?"
    )
    training = commands.train_command(["config", "check", "init"])
    assert (
        "(lcp workdir begin {params.work_dir} --checkpoint {output.checkpoint} --request {params.args:q}"
        " --input {input.config} --input {input.check} --input {input.init}"
        " && {params.tracking_env} lcp train {params.args} {params.gpus} {params.tracking}"
        " --work-dir {params.work_dir} --auto-resume"
        " && lcp workdir finish {params.work_dir} --checkpoint {output.checkpoint}) > {log} 2>&1"
    ) in training
