"""lcp.workflow's config checks and job resources, from config/config.yaml's scenes, without Snakemake."""

import json
import re

import pytest

from helpers.workflow import REPO, converted_clear, repo_config
from lcp.errors import LCPError
from lcp.workflow.checks import converted_set_problem, scene_reference_problems, training_set_problems
from lcp.workflow.overrides import retype_config_overrides
from lcp.workflow.resources import job_resources, resource_setting, train_gpus_option
from lcp.workflow.scenes import TRAINING_RULES, image_sets, resource_rules


@pytest.fixture
def config(monkeypatch):
    monkeypatch.chdir(REPO)  # the scenes' model configs are relative to the repository
    return repo_config()


def test_the_resource_rules_are_the_workflows_rules():
    defined = set()
    for rules in (REPO / "workflow" / "rules").glob("*.smk"):
        for plain, derived in re.findall(r"^(?:rule (\w+):|use rule \w+ as (\w+))", rules.read_text(), re.MULTILINE):
            defined.add(plain or derived)
    assert set(resource_rules()) <= defined
    assert set(TRAINING_RULES) <= set(resource_rules())
    assert {"train_lcp", "evaluate_robustness"} <= defined


def test_resources_layer_scene_rule_over_scene_default_over_global(config):
    assert resource_setting(config, "urpc", "train_lcp", "mem_mb") == 48000  # global rule
    assert resource_setting(config, "urpc", "make_demo_data", "runtime") == 30  # global default
    assert resource_setting(config, "demo", "evaluate", "mem_mb") == 4000  # scene rule
    assert resource_setting(config, "demo", "train_lcp", "gpus") == 0  # scene default over global rule
    config["scenes"]["urpc"]["resources"] = {"default": {"runtime": 5}, "train_lcp": {"runtime": 600}}
    assert resource_setting(config, "urpc", "check_data", "runtime") == 5  # scene default
    assert resource_setting(config, "urpc", "train_lcp", "runtime") == 600
    assert resource_setting(config, "urpc", "train_lcp", "nodes") == 1


def test_a_scene_that_sets_no_resources_trains_and_evaluates_on_one_gpu(config):
    """The global resources are sized for the published scenes, so a user's scene without its own
    `resources` is not trained on 2 CPUs for 60 minutes (the demo's sizes, once the global ones)."""
    mine = {k: v for k, v in config["scenes"]["custom"].items() if k != "resources"}
    config["scenes"]["mine"] = mine
    for rule in ("pretrain", "train_baseline", "train_lcp", "evaluate", "evaluate_robustness"):
        assert job_resources(config, "mine", rule)["gpu"] == 1, rule
    assert job_resources(config, "mine", "train_lcp")["runtime"] >= 1440
    assert job_resources(config, "demo", "train_lcp")["gpu"] == 0
    # the data jobs decode every image: a 20k-pair check took ~50 core-minutes, over the default's 30 on 1 core
    for rule in ("convert_image_set", "synthesize_image_set", "check_data"):
        assert job_resources(config, "mine", rule)["cpus_per_task"] >= 8, rule
        assert job_resources(config, "mine", rule)["runtime"] >= 240, rule


def test_a_training_job_on_several_gpus_runs_one_slurm_task_per_gpu(config):
    one = job_resources(config, "urpc", "train_lcp")
    assert (one["gpu"], one["tasks"], one["mpi"]) == (1, None, None)
    assert train_gpus_option(config, "urpc", "train_lcp") == ""
    config["scenes"]["urpc"]["resources"] = {"train_lcp": {"gpus": 4, "nodes": 2, "partition": "gpu"}}
    four = job_resources(config, "urpc", "train_lcp")
    assert {key: four[key] for key in ("gpu", "nodes", "tasks", "tasks_per_gpu", "mpi", "slurm_partition")} == {
        "gpu": 4,
        "nodes": 2,
        "tasks": 4,
        "tasks_per_gpu": 1,
        "mpi": "srun",
        "slurm_partition": "gpu",
    }
    assert train_gpus_option(config, "urpc", "train_lcp") == "--gpus 4"
    assert "nodes" not in job_resources(config, "urpc", "evaluate")
    # no partition in the config for evaluate: none of the job's, so the profile's applies
    assert "slurm_partition" not in job_resources(config, "urpc", "evaluate")


def test_the_shipped_config_has_no_reference_problem(config):
    assert scene_reference_problems(config) == []


def test_reference_problems_name_the_key(config):
    config["run"] = ["demo", "fog"]
    config["scenes"]["urpc"]["lowq_set"] = "murky"
    config["scenes"]["urpc"]["resources"] = {"evaluate": {"gpus": 2}}
    config["scenes"]["demo"]["resources"] = {"train_lcp": {"nodes": 2}}
    assert scene_reference_problems(config) == [
        "run: scene 'fog' is not defined under scenes (demo, urpc, foggy_city, rainy_city, custom)",
        "scenes.urpc.lowq_set: 'murky' is not an image set of the scene (dfui, urpc)",
        (
            "scenes.demo: train_lcp asks for gpus: 1, nodes: 2; a distributed training job runs one process per GPU, "
            "so it needs a GPU on each node"
        ),
        (
            "scenes.urpc: evaluate asks for gpus: 2, nodes: 1; "
            "only training jobs (pretrain, train_baseline, train_lcp) "
            "run on several GPUs or nodes"
        ),
    ]


def test_a_scene_with_demo_and_image_sets_or_a_set_synthesised_twice_is_named(config):
    config["scenes"]["demo"]["image_sets"] = dict(config["scenes"]["custom"]["image_sets"])
    del config["scenes"]["urpc"]["image_sets"]
    custom = config["scenes"]["custom"]["image_sets"]
    custom["foggier"] = {"synthesize": "fog", "from": "foggy", "options": {"beta": 0.04}}
    problems = scene_reference_problems(config)
    for expected in (
        "scenes.demo: give exactly one of `demo` (generated scene) and `image_sets`",
        "scenes.urpc: give exactly one of `demo` (generated scene) and `image_sets`",
        "scenes.custom.image_sets.foggier.from: synthesise from a converted set, not a synthesised one",
    ):
        assert expected in problems, problems


def test_a_step_may_not_set_what_the_workflow_sets(config):
    # applied after the workflow's own, a test set here was evaluated for every severity of the sweep
    config["scenes"]["demo"]["baseline"]["cfg_options"]["test_ann"] = "demo/annotations/clean_test.json"
    # lcp train's --load-from, which the workflow gives, won over it without a word
    config["scenes"]["demo"]["lcp"]["cfg_options"]["load_from"] = "my.pth"
    config["scenes"]["demo"]["pretrain"]["cfg_options"]["load_from"] = "coco.pth"  # pretraining may start from one
    # the URPC converter writes its fixed classes in their order; another order failed at pretraining
    config["scenes"]["urpc"]["classes"] = ["starfish", "echinus"]
    assert scene_reference_problems(config) == [
        "scenes.demo.baseline.cfg_options.test_ann: the workflow sets it from the scene's image sets and classes; "
        "change those instead",
        "scenes.demo.lcp.cfg_options.load_from: the workflow starts lcp from the pretrained detector (--load-from); "
        "bring your own with pretrain.checkpoint",
        "scenes.urpc.classes: URPC's classes are echinus, holothurian, scallop, starfish; a scene converting it "
        "lists some of them, in that order",
    ]
    config["scenes"]["urpc"]["classes"] = ["echinus", "starfish"]
    assert len(scene_reference_problems(config)) == 2


def test_scenes_sharing_a_folder_must_define_its_sets_alike(config):
    assert image_sets(config)[("city", "city_images")][1] == "scenes.foggy_city.image_sets.city_images"
    config["scenes"]["rainy_city"]["image_sets"]["city_images"]["path"] = "/elsewhere"
    with pytest.raises(
        LCPError,
        match="invalid config: scenes.rainy_city.image_sets.city_images differs from "
        "scenes.foggy_city.image_sets.city_images, which makes the same image set "
        "city/city_images",
    ):
        image_sets(config)


def converted(tmp_path, config, names):
    """A converted set custom/clear under tmp_path whose annotations list `names`, one image file on disk."""
    config["data_dir"] = str(tmp_path)
    return converted_clear(tmp_path, names)


def test_a_converted_set_that_lost_an_image_is_refused(tmp_path, config):
    folder = converted(tmp_path, config, ["a.jpg", "b.jpg"])
    problem = converted_set_problem(config, "custom", "clear")
    assert problem == (
        f"{folder}: 1 of the 2 images of {tmp_path}/custom/annotations/clear_train.json are missing, "
        "the first b.jpg (changed since scenes.custom.image_sets.clear was converted); convert it "
        f"again: remove {folder} and the workflow remakes it"
    )
    (folder / "b.jpg").write_bytes(b"\xff\xd8")
    assert converted_set_problem(config, "custom", "clear") is None
    assert converted_set_problem(config, "custom", "foggy") is None  # synthesised, not converted


def test_training_sets_are_checked_against_the_scene(tmp_path, config):
    converted(tmp_path, config, ["a.jpg"])
    problem, warnings = training_set_problems(config, "custom", "my.yaml")
    assert problem is None
    assert warnings == [
        (
            f"warning: {tmp_path}/custom/annotations/clear_train.json: no box of car (classes of "
            "scenes.custom) in the train split of scenes.custom.clean_set 'clear'; the detector never "
            "learns it"
        )
    ]
    config["scenes"]["custom"]["lowq_set"] = "clear"
    problem, _ = training_set_problems(config, "custom", "my.yaml")
    assert problem.startswith(
        "invalid config: my.yaml: scenes.custom: clean_set and lowq_set are the same image set 'clear'; LCP learns"
    )
    config["scenes"]["custom"]["allow_same_sets"] = True
    config["scenes"]["custom"]["image_sets"]["clear"]["convert"] = "folder"
    problem, _ = training_set_problems(config, "custom", "my.yaml")
    assert "comes from `convert: folder`, images without boxes" in problem


def test_test_images_whose_twins_the_clean_train_split_holds_are_warned_about(tmp_path, config):
    """URPC2020 and DFUI split apart (an older split draw, another test list): DFUI's train split
    holding the twin of a URPC test image shows pretraining and LCP that test scene."""
    config["data_dir"] = str(tmp_path)
    folder = tmp_path / "urpc/annotations"
    folder.mkdir(parents=True)
    categories = [{"id": 1, "name": "echinus"}]

    def write(name, files):
        images = [{"id": i, "file_name": f, "width": 8, "height": 8} for i, f in enumerate(files, 1)]
        boxes = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16} for i in range(1, 3)]
        (folder / name).write_text(json.dumps({"images": images, "annotations": boxes, "categories": categories}))

    write("dfui_train.json", ["000001.jpg", "000002.jpg", "000008.jpg"])
    write("urpc_train.json", ["000001.jpg", "000002.jpg"])
    write("urpc_test.json", ["000008.jpg", "000009.jpg"])
    problem, warnings = training_set_problems(config, "urpc", "my.yaml")
    assert problem is None
    twin_warnings = [w for w in warnings if "have a twin" in w]
    assert twin_warnings == [
        f"warning: {folder}/urpc_test.json: 1 of its test images have a twin in the train split of "
        f"scenes.urpc.clean_set 'dfui' ({folder}/dfui_train.json), e.g. 000008.jpg: pretraining and LCP's "
        "detection-favoured draw see those test scenes, and the AP is too high. The two sets were split apart: "
        "by another `test-list`, seed or `test-fraction`, or by an lcp from before 2026-11-29, whose split draw "
        "differs. Unless they are unrelated images that share names, give both the same split options and "
        f"convert both again: run with --forcerun {folder}/dfui_train.json {folder}/urpc_test.json"
    ]
    write("dfui_train.json", ["000001.jpg", "000002.jpg"])
    assert not [w for w in training_set_problems(config, "urpc", "my.yaml")[1] if "have a twin" in w]


def test_a_synthesised_or_foggy_cityscapes_image_is_the_twin_of_its_source(tmp_path):
    from lcp.workflow.preflight import test_twins_in_train

    def coco(path, files):
        images = [{"id": i, "file_name": f} for i, f in enumerate(files, 1)]
        path.write_text(json.dumps({"images": images, "annotations": [], "categories": []}))
        return path

    clean = coco(tmp_path / "clean.json", ["aachen_000000_000019_leftImg8bit.jpg", "b.jpg"])
    lowq = coco(
        tmp_path / "lowq.json",
        ["aachen_000000_000019_leftImg8bit_foggy_beta_0.02.jpg", "b_rain_intensity_0.5.jpg", "c_foggy_beta_0.02.jpg"],
    )
    assert test_twins_in_train(json.loads(clean.read_text()), json.loads(lowq.read_text())) == [
        "aachen_000000_000019_leftImg8bit_foggy_beta_0.02.jpg",
        "b_rain_intensity_0.5.jpg",
    ]


def test_values_nested_in_snakemakes_config_option_get_the_schemas_types(config):
    """`--config 'resources={pretrain: {mem_mb: 8000}}'` reached the schema as mem_mb '8000' and was refused
    as not an integer; so was every nested override. Text the schema wants stays text, whatever it reads like."""
    from snakemake.cli import parse_config
    from snakemake.utils import update_config

    overrides = parse_config(
        [
            "resources={pretrain: {mem_mb: 8000, runtime: 90}}",
            "tracking={enabled: false}",
            "scenes={demo: {seeds: [0, 1], robustness: {sweep: {beta: [0.05, 1e-2]}}, description: 'fog: light #2'}}",
            "scenes={custom: {classes: [person, 'no', '1']}}",
            "scenes={custom: {image_sets: {foggy: {options: {beta: 0.03, clear: true}}}}}",
            "scenes={demo: {lcp: {cfg_options: {runner.max_epochs: 6, lr_config.step: '[5]', fp16: 'null'}}}}",
            "run=[demo]",
            "data_dir=my data",
        ]
    )
    assert overrides["resources"]["pretrain"]["mem_mb"] == "8000"  # what Snakemake gives the workflow
    update_config(config, overrides)  # as Snakemake merges them into the config file's
    retype_config_overrides(config, overrides)
    assert config["resources"]["pretrain"] == {**config["resources"]["pretrain"], "mem_mb": 8000, "runtime": 90}
    assert config["tracking"]["enabled"] is False
    demo, custom = config["scenes"]["demo"], config["scenes"]["custom"]
    assert demo["seeds"] == [0, 1] and demo["robustness"]["sweep"] == {"beta": [0.05, 0.01]}
    assert demo["description"] == "fog: light #2"  # not a mapping, not cut at '#'
    assert custom["classes"] == ["person", "no", "1"]  # class names are text: not False, not 1
    assert custom["image_sets"]["foggy"]["options"] == {"beta": 0.03, "clear": True}
    cfg_options = demo["lcp"]["cfg_options"]
    assert {key: cfg_options[key] for key in ("runner.max_epochs", "lr_config.step", "fp16")} == {
        "runner.max_epochs": 6,
        "lr_config.step": "[5]",
        "fp16": "null",
    }
    assert demo["lcp"]["config"] == repo_config()["scenes"]["demo"]["lcp"]["config"]  # untouched
    assert config["run"] == ["demo"] and config["data_dir"] == "my data"


def test_a_changed_source_is_warned_about_unless_snakemake_converts_again_or_it_is_a_depth_folder(tmp_path):
    """A file rewritten below a source folder left the old conversion in use, silently; a depth
    folder inside the source tree (Cityscapes' disparity/, read by the sweep) is no source of it."""
    import os
    import time

    from lcp.workflow.checks import converted_set_outdated

    source = tmp_path / "my_voc"
    (source / "JPEGImages").mkdir(parents=True)
    (source / "depth").mkdir()
    image, depth_map = source / "JPEGImages" / "a.jpg", source / "depth" / "a.png"
    image.write_bytes(b"x")
    depth_map.write_bytes(b"x")
    config = repo_config()
    config["data_dir"] = str(tmp_path / "data")
    config["scenes"]["custom"]["image_sets"]["clear"]["path"] = str(source)
    config["scenes"]["custom"]["robustness"]["options"] = {"depth-dir": str(source / "depth")}
    annotations = tmp_path / "data" / "custom" / "annotations"
    annotations.mkdir(parents=True)
    for split in ("train", "test"):
        (annotations / f"clear_{split}.json").write_text("{}")
    assert converted_set_outdated(config, "custom", "clear") is None

    later = time.time_ns() + 10**9
    os.utime(depth_map, ns=(later, later))
    assert converted_set_outdated(config, "custom", "clear") is None
    os.utime(image, ns=(later, later))
    assert converted_set_outdated(config, "custom", "clear") == (
        f"scenes.custom.image_sets.clear: {image} changed after {annotations / 'clear_train.json'} was converted; "
        f"the workflow goes on with the old conversion: to convert it again, run with --forcerun "
        f"{annotations / 'clear_train.json'}"
    )
    os.utime(source, ns=(later, later))  # snakemake sees the folder's own time: it converts again itself
    assert converted_set_outdated(config, "custom", "clear") is None
