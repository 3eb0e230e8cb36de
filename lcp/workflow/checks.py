"""What the workflow config must satisfy beyond its schema, and the checks of the image sets
a run reads that an earlier run converted. Each problem is one line; the workflow prints
it and stops before any job starts (in a dry run too).
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from lcp.apis.options import read_as_text, spaces_dropped
from lcp.data import SPLITS
from lcp.data.coco import load_coco
from lcp.data.convert.urpc import CLASSES as URPC_CLASSES
from lcp.data.demo_sizes import NUM_IMAGES, test_split_size
from lcp.errors import LCPError
from lcp.workflow import paths
from lcp.workflow.commands import WORKFLOW_FLAGS
from lcp.workflow.converters import SYNTHESIS_PATH_OPTIONS, recipe_sources, unknown_option_problems
from lcp.workflow.preflight import missing_images, same_images, test_twins_in_train, training_boxes
from lcp.workflow.resources import resource_setting
from lcp.workflow.scenes import (
    STEPS,
    TRAINING_RULES,
    WORKFLOW_CFG_OPTIONS,
    converted_sets,
    data_dir,
    dataset_of,
    image_sets,
    resource_rules,
    scene_seeds,
)

# Converter options that re-split a set's images into train and test.
SPLIT_OPTIONS = ("test-fraction", "test-list")
# What a path the training jobs' command lines carry unquoted may hold (as data_dir in the schema)
COMMAND_LINE_PATH = re.compile(r"[\w./+@:=-]+")


def workflow_flag_problems(where: str, options: Mapping, flags: frozenset[str], why: str = "") -> list[str]:
    """One line per option in `options` that the workflow gives the command itself (`flags`)."""
    hints = {"workers": "the rule's cpus resource sets it"}
    return [
        f"{where}.{flag}: the workflow gives the command its own --{flag} ({why or hints.get(flag, 'from the scene')}) "
        "and one of the two would be dropped without a word; remove it"
        for flag in options
        if flag in flags
    ]


def scene_reference_problems(config: Mapping) -> list[str]:
    """What the schema cannot express: names that must refer to other entries, files that
    must exist in the repository, several GPUs or nodes for training jobs only, the
    degradation of a synthesised low-quality set, options the data tools take, and the
    settings of scenes that share a folder."""
    problems = []
    for name in config["run"]:
        if name not in config["scenes"]:
            problems.append(f"run: scene {name!r} is not defined under scenes ({', '.join(config['scenes'])})")
    for name, scene in config["scenes"].items():
        key = f"scenes.{name}"
        sets = scene.get("image_sets", {})
        if ("demo" in scene) == bool(sets):
            problems.append(f"{key}: give exactly one of `demo` (generated scene) and `image_sets`")
        known = {"clean", "lowq", "depth"} if "demo" in scene else set(sets)
        for role in ("clean_set", "lowq_set"):
            if scene[role] not in known:
                problems.append(
                    f"{key}.{role}: {scene[role]!r} is not an image set of the scene ({', '.join(sorted(known))})"
                )
        for set_name, recipe in sets.items():
            if "synthesize" in recipe and recipe["from"] not in sets:
                problems.append(
                    f"{key}.image_sets.{set_name}.from: {recipe['from']!r} is not an image set of the scene"
                )
            if "synthesize" in recipe and "synthesize" in sets.get(recipe["from"], {}):
                problems.append(
                    f"{key}.image_sets.{set_name}.from: synthesise from a converted set, not a synthesised one"
                )
        synthesized = sets.get(scene["lowq_set"], {}).get("synthesize")
        if synthesized and scene["degradation"] != synthesized:  # the check would judge it as something else
            problems.append(
                f"{key}.degradation: {scene['degradation']!r}, but lowq_set {scene['lowq_set']!r} is synthesised "
                f"with {synthesized}; set degradation: {synthesized}"
            )
        for set_name, recipe in sets.items():
            named = [
                ("path", recipe.get("path")),
                *((f"options.{flag}", v) for flag, v in recipe.get("options", {}).items()),
            ]
            if str(recipe.get("path", "")).startswith("-"):
                problems.append(
                    f"{key}.image_sets.{set_name}.path: {recipe['path']!r} would be read as an option; "
                    f"write it as ./{recipe['path']}"
                )
            for where, value in named:
                if isinstance(value, str) and ("{" in value or "}" in value):  # no escape makes snakemake take them
                    problems.append(
                        f"{key}.image_sets.{set_name}.{where}: {value!r} holds a brace, which Snakemake reads as a "
                        "wildcard; link the folder under a name without braces and give that"
                    )
            options = recipe.get("options", {})
            if recipe.get("convert") == "coco" and not (
                {"train", "test"} <= set(options) or {*SPLIT_OPTIONS} & set(options)
            ):
                # the converter keeps each file's split: one split only, and the job's other file never appears
                problems.append(
                    f"{key}.image_sets.{set_name}.options: a coco set needs both `train: JSON` and `test: JSON`, "
                    "or one of them split with `test-fraction: 0.2`; the scene trains and evaluates on it"
                )
            tool = ("convert", recipe["convert"]) if "convert" in recipe else ("synth", recipe["synthesize"])
            problems += unknown_option_problems(f"{key}.image_sets.{set_name}.options", options, *tool)
            problems += workflow_flag_problems(f"{key}.image_sets.{set_name}.options", options, WORKFLOW_FLAGS[tool[0]])
        check_options = scene.get("check_options", {})
        problems += unknown_option_problems(f"{key}.check_options", check_options, "check")
        problems += workflow_flag_problems(f"{key}.check_options", check_options, WORKFLOW_FLAGS["check"])
        if "robustness" in scene and scene["degradation"] != "none":
            sweep = scene["robustness"]
            for part in ("sweep", "options"):
                options = sweep.get(part, {})
                problems += unknown_option_problems(f"{key}.robustness.{part}", options, "synth", scene["degradation"])
                problems += workflow_flag_problems(f"{key}.robustness.{part}", options, WORKFLOW_FLAGS["synth"])
            problems += workflow_flag_problems(
                f"{key}.robustness.options",
                sweep.get("options", {}),
                frozenset(sweep.get("sweep", {})),
                "one value per severity of the sweep",
            )
            for parameter, values in sweep.get("sweep", {}).items():
                problems += [
                    f"{key}.robustness.sweep.{parameter}.{index}: {value} is no severity; give a finite number"
                    for index, value in enumerate(values)
                    if not math.isfinite(value)  # YAML's .inf and .nan pass the schema's `number`
                ]
        if "robustness" in scene and scene["degradation"] == "none":
            problems.append(f"{key}.robustness: needs a `degradation` to synthesise the sweep with")
        for index, name in enumerate(scene["classes"]):
            if not read_as_text(name) or name.startswith("-"):
                what = "an option" if name.startswith("-") else "a number, True, False or None"
                problems.append(
                    f"{key}.classes.{index}: {name!r} would reach the jobs as {what}, not a class name; rename the "
                    f"category while converting (e.g. the coco converter's options {{rename: \"{name}=class_{name}\"}})"
                )
        for step in STEPS:
            model_config = scene[step]["config"]
            if not COMMAND_LINE_PATH.fullmatch(model_config) or model_config.startswith("-"):
                problems.append(
                    f"{key}.{step}.config: {model_config!r}: the training jobs' command lines carry this path as it "
                    "is; keep to letters, digits and . _ / + @ : = - (not first), e.g. link the file under such a name"
                )
            elif not Path(model_config).is_file():
                where = "" if Path(model_config).is_absolute() else f" in {Path.cwd()}, snakemake's working directory"
                problems.append(f"{key}.{step}.config: {model_config} does not exist{where}")
            for option, value in scene[step].get("cfg_options", {}).items():
                if isinstance(value, str) and (problem := spaces_dropped(value)):
                    problems.append(f"{key}.{step}.cfg_options.{option}: {problem}")
            for option in sorted(set(scene[step].get("cfg_options", {})) & set(WORKFLOW_CFG_OPTIONS)):
                # applied after the workflow's, a test set here would replace every severity's of the sweep
                problems.append(
                    f"{key}.{step}.cfg_options.{option}: the workflow sets it from the scene's image sets and "
                    "classes; change those instead"
                )
            if step != "pretrain" and "load_from" in scene[step].get("cfg_options", {}):
                # lcp train's --load-from, which the workflow gives, wins: the file was dropped without a word
                problems.append(
                    f"{key}.{step}.cfg_options.load_from: the workflow starts {step} from the pretrained detector "
                    "(--load-from); bring your own with pretrain.checkpoint"
                )
        urpc_order = [name for name in URPC_CLASSES if name in scene["classes"]]
        if any(recipe.get("convert") == "urpc" for recipe in sets.values()) and urpc_order != list(scene["classes"]):
            # the converter writes its fixed classes in this order; another order fails at pretraining
            problems.append(
                f"{key}.classes: URPC's classes are {', '.join(URPC_CLASSES)}; a scene converting it lists some of "
                "them, in that order"
            )
    first_of_folder: dict[str, str] = {}
    for name in config["scenes"]:  # a shared folder's image sets are made with the first scene's settings
        first = first_of_folder.setdefault(dataset_of(config, name), name)
        for setting in ("classes", "demo"):
            if first != name and config["scenes"][name].get(setting) != config["scenes"][first].get(setting):
                problems.append(
                    f"scenes.{name}.{setting} differs from scenes.{first}.{setting}, whose settings make the image "
                    f"sets of their shared folder {dataset_of(config, name)!r}; make them equal or give each its "
                    "own `dataset`"
                )
    for name in config["scenes"]:
        for rule_name in resource_rules():
            gpus, nodes = (resource_setting(config, name, rule_name, key) or 0 for key in ("gpus", "nodes"))
            where = f"scenes.{name}: {rule_name} asks for gpus: {gpus}, nodes: {nodes}"
            if rule_name not in TRAINING_RULES and (gpus > 1 or nodes > 1):
                problems.append(
                    f"{where}; only training jobs (pretrain, train_baseline, train_lcp) run on several GPUs or nodes"
                )
            elif nodes > max(gpus, 1):
                problems.append(
                    f"{where}; a distributed training job runs one process per GPU, so it needs a GPU on each node"
                )
    return problems


def converted_set_problem(config: Mapping, dataset: str, set_name: str) -> str | None:
    """Why a converted image set that a job reads cannot be used as it is: it lost images
    since its conversion (the converter's job would not run again, its folder exists, and the
    training would fail on the first missing image hours later). None for a set not converted yet."""
    if (dataset, set_name) not in converted_sets(config):
        return None
    data, files = data_dir(config), paths.converted_set(dataset, set_name)
    images = f"{data}/{files['images']}"
    for split in SPLITS:
        ann_file = f"{data}/{files[split]}"
        if not (Path(images).is_dir() and Path(ann_file).is_file()):
            return None
        try:
            missing, listed = missing_images(images, ann_file)
        except LCPError as exc:
            return f"{exc}; convert the set again: remove {images} and the workflow remakes it"
        if missing:
            return (
                f"{images}: {len(missing)} of the {listed} images of {ann_file} are missing, the first "
                f"{missing[0]} (changed since {image_sets(config)[(dataset, set_name)][1]} was converted); "
                f"convert it again: remove {images} and the workflow remakes it"
            )
    return None


def changed_after(sources: Sequence[str], time_ns: int) -> list[str]:
    """The files and folders under `sources` (files, or folders walked whole) modified after
    `time_ns`, sorted. A folder's time changes when a file is added to it, removed or renamed;
    a file's when it is rewritten in place."""
    changed = []
    for source in sources:
        if os.path.isfile(source):
            entries = [source]
        else:
            entries = []
            for folder, _, files in os.walk(source, followlinks=True):
                entries += [folder, *(os.path.join(folder, name) for name in files)]
        for path in entries:
            try:
                if os.stat(path).st_mtime_ns > time_ns:
                    changed.append(path)
            except OSError:  # a dangling link: the converter would say so
                continue
    return sorted(changed)


def _depth_folders(config: Mapping) -> set[str]:
    """The folders the workflow's synthesis and sweep jobs read depth from (SYNTHESIS_PATH_OPTIONS)."""
    options = [recipe.get("options", {}) for recipe, _ in image_sets(config).values() if "synthesize" in recipe]
    options += [scene["robustness"].get("options", {}) for scene in config["scenes"].values() if "robustness" in scene]
    return {str(value) for group in options for key, value in group.items() if key in SYNTHESIS_PATH_OPTIONS}


def converted_set_outdated(config: Mapping, dataset: str, set_name: str) -> str | None:
    """A warning when files of a converted set's source changed after the set was converted:
    Snakemake looks at a source folder's own time only, which a file added to a subfolder
    (VOC's Annotations/, YOLO's labels/) or rewritten in place leaves as it was, so the old
    conversion goes on being used. A warning, not a rerun: a file the converter does not read
    changes the times too, and a rerun of the conversion retrains every model after it.
    None for a set not converted yet, converted after every change, or whose conversion
    Snakemake runs again anyway (a source it sees, the folder itself or an option's file, is
    newer). Folders the workflow reads depth from (the synthesis and sweep options) are no
    source of the conversion, though they may lie in its source tree (Cityscapes' disparity/)."""
    if (dataset, set_name) not in converted_sets(config):
        return None
    recipe, key = image_sets(config)[(dataset, set_name)]
    files = paths.converted_set(dataset, set_name)
    outputs = [Path(data_dir(config)) / files[split] for split in SPLITS]
    if not all(output.is_file() for output in outputs):
        return None
    converted = min(output.stat().st_mtime_ns for output in outputs)
    sources = [source for source in recipe_sources(recipe, key).values() if os.path.exists(source)]
    if any(os.stat(source).st_mtime_ns > converted for source in sources):
        return None  # Snakemake converts it again itself
    depth = tuple(os.path.join(os.path.normpath(folder), "") for folder in _depth_folders(config) - set(sources))
    changed = [path for path in changed_after(sources, converted) if not os.path.normpath(path).startswith(depth)]
    if not changed:
        return None
    more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
    return (
        f"{key}: {changed[0]}{more} changed after {outputs[0]} was converted; the workflow goes on with the "
        f"old conversion: to convert it again, run with --forcerun {outputs[0]}"
    )


def training_set_problems(config: Mapping, scene_name: str, config_source: str) -> tuple[str | None, list[str]]:
    """(why a scene's training sets cannot train it, or None; warnings).

    Refused: the clean and low-quality set converted from the same images (LCP's KL loss would
    be exactly 0; `allow_same_sets: true` allows it), a set converted with `folder` (images
    without boxes), or a set converted in an earlier run whose train split has no box of the
    scene's classes. Warned: a class without a box there, and low-quality test images whose clean
    twins are in the clean set's train split (test_twins_in_train). A set not converted yet is checked
    by its converter, which refuses a scene class the source has no box of (exit status 2).
    `config_source` names the config file(s) in the messages.
    """
    scene, key, sets = config["scenes"][scene_name], f"scenes.{scene_name}", image_sets(config)
    dataset, classes, data = dataset_of(config, scene_name), scene["classes"], data_dir(config)
    recipes = {role: sets[(dataset, scene[role])][0] for role in ("clean_set", "lowq_set")}
    if not scene.get("allow_same_sets", False):
        shared = same_images(*recipes.values())
        if scene["clean_set"] == scene["lowq_set"] or shared:
            same_set = scene["clean_set"] == scene["lowq_set"]
            what = f"the same image set {scene['clean_set']!r}" if same_set else f"the images of {shared}"
            return (
                f"invalid config: {config_source}: {key}: clean_set and lowq_set are {what}; LCP learns "
                "from the difference between the two (its KL loss would be exactly 0); set "
                f"{key}.allow_same_sets: true if this is intended"
            ), []
    warnings, train_splits = [], {}
    for role, recipe in recipes.items():
        source = sets[(dataset, recipe["from"])][0] if "synthesize" in recipe else recipe
        if source.get("convert") == "folder":
            return (
                f"invalid config: {config_source}: {key}.{role}: {scene[role]!r} comes from `convert: folder`, "
                "images without boxes; a training set needs boxes of the scene's classes"
            ), warnings
        files = paths.image_set_paths(config, scene_name, scene[role])
        ann_file = f"{data}/{files['train']}"
        if not Path(ann_file).is_file():
            continue
        try:
            train_splits[role] = load_coco(ann_file)
        except LCPError as exc:
            return f"{exc}; convert the set again: remove {data}/{files['images']}", warnings
        boxes = training_boxes(train_splits[role], classes)
        if not any(boxes.values()):
            return (
                f"{ann_file}: no box of the scene's classes ({', '.join(classes)}) in the train split of "
                f"{key}.{role} {scene[role]!r}; nothing to train on"
            ), warnings
        empty = [name for name, count in boxes.items() if not count]
        if empty:
            warnings.append(
                f"warning: {ann_file}: no box of {', '.join(empty)} (classes of {key}) in the train "
                f"split of {key}.{role} {scene[role]!r}; the detector never learns "
                f"{'it' if len(empty) == 1 else 'them'}"
            )
    clean_train, lowq_test = (
        f"{data}/{paths.image_set_paths(config, scene_name, scene[role])[split]}"
        for role, split in (("clean_set", "train"), ("lowq_set", "test"))
    )
    if "clean_set" in train_splits and Path(lowq_test).is_file():
        if twins := test_twins_in_train(train_splits["clean_set"], load_coco(lowq_test)):
            warnings.append(
                f"warning: {lowq_test}: {len(twins)} of its test images have a twin in the train split of "
                f"{key}.clean_set {scene['clean_set']!r} ({clean_train}), e.g. {twins[0]}: pretraining and "
                "LCP's detection-favoured draw see those test scenes, and the AP is too high. The two sets "
                "were split apart: by another `test-list`, seed or `test-fraction`, or by an lcp from before "
                "2026-11-29, whose split draw differs. Unless they are unrelated images that share names, "
                f"give both the same split options and convert both again: run with --forcerun {clean_train} "
                f"{lowq_test}"
            )
    return None, warnings


def report_test_set_problem(config: Mapping, scene_name: str, config_source: str) -> str | None:
    """Why a scene's report will not be drawn, or None: its crux heat maps and sample detections
    are of distinct images of the low-quality test split, so the split needs as many. A demo
    scene's split size follows from its settings, a converted set's from its file once converted
    (one not converted yet is counted by the drawing jobs, which refuse too few images)."""
    scene, key = config["scenes"][scene_name], f"scenes.{scene_name}"
    wanted = max(paths.HEATMAPS, paths.SAMPLE_DETECTIONS)
    drawn = (
        f"the report draws its {paths.HEATMAPS} crux heat maps and {paths.SAMPLE_DETECTIONS} sample "
        f"detections of each method from distinct test images"
    )
    seed_dir = paths.seed_dir(config, scene_name, scene_seeds(config, scene_name)[0])
    only_evaluations = f"or ask for the evaluations alone, e.g. {paths.evaluation(scene_name, 'lcp', seed_dir)}"
    if "demo" in scene:
        num_images = scene["demo"].get("num_images", NUM_IMAGES)
        count = test_split_size(num_images)
        if count >= wanted:
            return None
        enough = next(n for n in itertools.count(num_images) if test_split_size(n) >= wanted)
        return (
            f"{config_source}: {key}.demo.num_images: {num_images} images leave {count} to the test "
            f"split, and {drawn}; give at least {enough} ({only_evaluations})"
        )
    ann_file = f"{data_dir(config)}/{paths.image_set_paths(config, scene_name, scene['lowq_set'])['test']}"
    if not Path(ann_file).is_file():
        return None
    try:
        count = len(load_coco(ann_file)["images"])
    except LCPError as exc:
        return str(exc)
    if count >= wanted:
        return None
    return (
        f"{ann_file}: {count} test image{'s' * (count != 1)} in {key}.lowq_set {scene['lowq_set']!r}, and "
        f"{drawn}; give the test split at least {wanted} ({only_evaluations})"
    )
