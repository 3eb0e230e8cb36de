# Helpers of the lcp workflow: config validation, scene lookups, paths, command lines and
# job resources. The other .smk files hold rules only.

import os
import re
import shlex
import sys
from pathlib import Path

from jsonschema.exceptions import ValidationError, best_match
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from lcp.errors import LCPError
from lcp.workflow_checks import (check_model_step, clear_unfixable, missing_images, same_images, training_boxes,
                                 unfixable_guard)

# Jobs call the `lcp` of the Python environment snakemake runs from, activated or not.
os.environ.update(PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))

METHODS = ("baseline", "lcp")
STEPS = ("pretrain",) + METHODS
SPLITS = ("train", "test")
NAME_PATTERN = "[A-Za-z0-9][A-Za-z0-9_.-]*"
# What the converters accept beyond SRC OUT (see `lcp data convert FORMAT --help`).
CONVERTERS_WITH_CLASSES = {"cityscapes", "voc", "yolo", "coco", "folder"}
CONVERTERS_WITH_SPLIT_SEED = {"urpc", "voc", "yolo", "coco", "folder"}
# Converter and synthesis options that name files or folders on disk: they must exist
# before the run (see `lcp data convert FORMAT --help`, `lcp data synth fog --help`).
PATH_OPTIONS = {"foggy", "rainy", "images", "annotations", "test-list", "train", "test", "names", "labels",
                "disparity-dir", "camera-dir", "depth-dir"}
DEFAULT_RESOURCES = {"gpus": 0, "nodes": 1, "cpus": 1, "mem_mb": 2000, "runtime": 60}
TRAINING_RULES = ("pretrain", "train_baseline", "train_lcp")
RESOURCE_RULES = ("make_demo_data", "convert_image_set", "synthesize_image_set", "synthesize_robustness_set",
                  "check_data") + TRAINING_RULES + ("evaluate", "evaluate_robustness", "report", "report_robustness",
                                                    "crux_heatmaps")
# Crux heat maps of the scene's LCP model in the report: the first test images, one picture each.
HEATMAPS = 4


# ---- configuration ------------------------------------------------------------------


def stop(message):
    """End the run before any job starts, with the message alone (no traceback)."""
    logger.error(message)
    sys.exit(1)


def config_source():
    """The workflow config file(s) this run read, for messages: config/config.yaml and any --configfile."""
    files = [os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
             for path in workflow.configfiles]
    return ", ".join(dict.fromkeys(files)) or "config/config.yaml"


def scene_rule_setting(config, scene_name, rule_name, key):
    """A resource of a scene's rule: the scene's setting for the rule, else the scene's
    `default`, else the global setting for the rule, else the global `default`."""
    value = DEFAULT_RESOURCES.get(key)
    for resources in (config.get("resources", {}), config["scenes"][scene_name].get("resources", {})):
        for layer in ("default", rule_name):
            value = resources.get(layer, {}).get(key, value)
    return value


def validate_config(config):
    """Schema check, with one readable line naming the offending key."""
    try:
        validate(config, "../schemas/config.schema.yaml")
    except WorkflowError as exc:
        error = exc.__context__
        if not isinstance(error, ValidationError):
            raise
        error = best_match([error])
        where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        stop(f"invalid config: {where}: {error.message}")


def check_scene_references(config):
    """What the schema cannot express: names that must refer to other entries, files that
    must exist in the repository, and several GPUs or nodes for training jobs only."""
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
                problems.append(f"{key}.{role}: {scene[role]!r} is not an image set of the scene ({', '.join(sorted(known))})")
        for set_name, recipe in sets.items():
            if "synthesize" in recipe and recipe["from"] not in sets:
                problems.append(f"{key}.image_sets.{set_name}.from: {recipe['from']!r} is not an image set of the scene")
            if "synthesize" in recipe and "synthesize" in sets.get(recipe["from"], {}):
                problems.append(f"{key}.image_sets.{set_name}.from: synthesise from a converted set, not a synthesised one")
        if "robustness" in scene and scene["degradation"] == "none":
            problems.append(f"{key}.robustness: needs a `degradation` to synthesise the sweep with")
        for step in STEPS:
            if not Path(scene[step]["config"]).is_file():
                problems.append(f"{key}.{step}.config: {scene[step]['config']} does not exist")
    for name in config["scenes"]:
        for rule_name in RESOURCE_RULES:
            gpus, nodes = (scene_rule_setting(config, name, rule_name, key) for key in ("gpus", "nodes"))
            where = f"scenes.{name}: {rule_name} asks for gpus: {gpus}, nodes: {nodes}"
            if rule_name not in TRAINING_RULES and (gpus > 1 or nodes > 1):
                problems.append(f"{where}; only training jobs (pretrain, train_baseline, train_lcp) "
                                "run on several GPUs or nodes")
            elif nodes > max(gpus, 1):
                problems.append(f"{where}; a distributed training job runs one process per GPU, so it "
                                "needs a GPU on each node")
    if problems:
        stop("invalid config:\n  " + "\n  ".join(problems))


def collect_image_sets(config):
    """(dataset, image set) -> (recipe, the config key that defines it); shared sets must agree."""
    found = {}
    for name, scene in config["scenes"].items():
        for set_name, recipe in scene.get("image_sets", {}).items():
            where = (scene.get("dataset", name), set_name)
            key = f"scenes.{name}.image_sets.{set_name}"
            if where in found and found[where][0] != recipe:
                stop(f"invalid config: {key} differs from {found[where][1]}, "
                     f"which makes the same image set {'/'.join(where)}")
            found.setdefault(where, (recipe, key))
    demo_folders = {scene.get("dataset", name) for name, scene in config["scenes"].items() if "demo" in scene}
    for dataset, set_name in found:
        if dataset in demo_folders:
            stop(f"invalid config: {found[(dataset, set_name)][1]}: the folder {dataset} is "
                 "generated by a demo scene; give this scene another `dataset`")
    return found


validate_config(config)
check_scene_references(config)

SCENES = config["scenes"]
DATA = config["data_dir"].rstrip("/")
IMAGE_SETS = collect_image_sets(config)
DEMO_DATASETS = {scene.get("dataset", name): name for name, scene in SCENES.items() if "demo" in scene}
CONVERTED = {where for where, (recipe, _) in IMAGE_SETS.items() if "convert" in recipe}
SYNTHESIZED = {where for where, (recipe, _) in IMAGE_SETS.items() if "synthesize" in recipe}


def alternatives(names):
    """A wildcard constraint matching exactly `names` (and nothing when there are none)."""
    return "|".join(sorted(re.escape(name) for name in names)) or "(?!)"


# ---- scenes and paths ---------------------------------------------------------------


def dataset_of(scene_name):
    return SCENES[scene_name].get("dataset", scene_name)


def image_set_paths(scene_name, set_name):
    """An image set's images folder and annotation file per split, relative to DATA.

    Converters and `lcp data demo` write <dataset>/<set>/ and <dataset>/annotations/;
    synthesised and robustness sets live in folders of their own, so a converter that
    replaces its scene folder never takes them along.
    """
    dataset = dataset_of(scene_name)
    if (dataset, set_name) in SYNTHESIZED:
        base = f"synthesized/{dataset}/{set_name}"
        return {"images": base, **{split: f"{base}_{split}.json" for split in SPLITS}}
    return {"images": f"{dataset}/{set_name}", **{split: f"{dataset}/annotations/{set_name}_{split}.json" for split in SPLITS}}


def robustness_set_paths(scene_name, severity):
    base = f"robustness/{scene_name}/{severity}"
    return {"images": base, "test": f"{base}_test.json"}


def image_set_inputs(scene_name, set_name, splits=SPLITS):
    """What a job reading an image set declares as input."""
    dataset = dataset_of(scene_name)
    if dataset in DEMO_DATASETS:  # `lcp data demo` makes the whole folder at once
        return [f"{DATA}/{dataset}"]
    check_converted_set(dataset, set_name)
    paths = image_set_paths(scene_name, set_name)
    return [f"{DATA}/{paths[key]}" for key in ("images", *splits)]


_checked_sets = set()


def check_converted_set(dataset, set_name):
    """Stop the run (a dry run too) when a converted image set that a job reads has lost images
    since its conversion: the converter's job would not run again (its folder exists), and the
    training would fail on the first missing image hours later. Sets not converted yet pass."""
    if (dataset, set_name) not in CONVERTED or (dataset, set_name) in _checked_sets or not workflow.is_main_process:
        return
    _checked_sets.add((dataset, set_name))
    images = f"{DATA}/{dataset}/{set_name}"
    for split in SPLITS:
        ann_file = f"{DATA}/{dataset}/annotations/{set_name}_{split}.json"
        if not (Path(images).is_dir() and Path(ann_file).is_file()):
            return
        try:
            missing, listed = missing_images(images, ann_file)
        except LCPError as exc:
            stop(f"{exc}; convert the set again: remove {images} and the workflow remakes it")
        if missing:
            stop(f"{images}: {len(missing)} of the {listed} images of {ann_file} are missing, the first "
                 f"{missing[0]} (changed since {IMAGE_SETS[(dataset, set_name)][1]} was converted); convert it "
                 f"again: remove {images} and the workflow remakes it")


_checked_scenes = set()


def check_training_sets(scene_name):
    """Stop the run (a dry run too) when a scene's training sets cannot train it: the clean
    and low-quality set converted from the same images (LCP's KL loss would be exactly 0;
    `allow_same_sets: true` allows it), a set converted with `folder` (images without boxes),
    or a set converted in an earlier run whose train split has no box of the scene's
    classes; warn about a class without a box there. A set not converted yet is checked by
    its converter, which refuses a scene class the source has no box of (exit status 2)."""
    if scene_name in _checked_scenes or not workflow.is_main_process or dataset_of(scene_name) in DEMO_DATASETS:
        return
    _checked_scenes.add(scene_name)
    scene, key = SCENES[scene_name], f"scenes.{scene_name}"
    dataset, classes = dataset_of(scene_name), scene["classes"]
    recipes = {role: IMAGE_SETS[(dataset, scene[role])][0] for role in ("clean_set", "lowq_set")}
    if not scene.get("allow_same_sets", False):
        shared = same_images(*recipes.values())
        if scene["clean_set"] == scene["lowq_set"] or shared:
            same_set = scene["clean_set"] == scene["lowq_set"]
            what = f"the same image set {scene['clean_set']!r}" if same_set else f"the images of {shared}"
            stop(f"invalid config: {config_source()}: {key}: clean_set and lowq_set are {what}; LCP learns "
                 "from the difference between the two (its KL loss would be exactly 0); set "
                 f"{key}.allow_same_sets: true if this is intended")
    for role, recipe in recipes.items():
        source = IMAGE_SETS[(dataset, recipe["from"])][0] if "synthesize" in recipe else recipe
        if source.get("convert") == "folder":
            stop(f"invalid config: {config_source()}: {key}.{role}: {scene[role]!r} comes from `convert: folder`, "
                 "images without boxes; a training set needs boxes of the scene's classes")
        ann_file = f"{DATA}/{image_set_paths(scene_name, scene[role])['train']}"
        if not Path(ann_file).is_file():
            continue
        try:
            boxes = training_boxes(ann_file, classes)
        except LCPError as exc:
            stop(f"{exc}; convert the set again: remove {DATA}/{image_set_paths(scene_name, scene[role])['images']}")
        if not any(boxes.values()):
            stop(f"{ann_file}: no box of the scene's classes ({', '.join(classes)}) in the train split of "
                 f"{key}.{role} {scene[role]!r}; nothing to train on")
        empty = [name for name, count in boxes.items() if not count]
        if empty:
            logger.warning(f"warning: {ann_file}: no box of {', '.join(empty)} (classes of {key}) in the train "
                           f"split of {key}.{role} {scene[role]!r}; the detector never learns "
                           f"{'it' if len(empty) == 1 else 'them'}")


def severities(scene_name):
    """Robustness test sets of a scene, as `<option>_<value>` names (e.g. beta_0.02)."""
    sweep = SCENES[scene_name].get("robustness", {}).get("sweep", {})
    return [f"{option}_{value:g}" for option, values in sweep.items() for value in values]


def scene_seeds(scene_name):
    """The scene's training seeds (`seeds`, by default the top-level `seed`); the first also pretrains."""
    return SCENES[scene_name].get("seeds", [config["seed"]])


def seed_dir(scene_name, seed):
    """The folder of one seed's training and evaluations in results/<scene>/<method>/ (and of
    its logs in results/<scene>/logs/): none ('') when the scene trains one seed, `seed<N>/`
    when it trains several."""
    return "" if len(scene_seeds(scene_name)) == 1 else f"seed{seed}/"


def evaluation_name(scene_name, method, seed):
    """A method's evaluation in the report: METHOD for one seed, METHOD/seed<N> for several."""
    return method if len(scene_seeds(scene_name)) == 1 else f"{method}/seed{seed}"


def seed_of(wildcards):
    """The training seed of a job of the scene's methods, from its {seed_dir} wildcard."""
    seeds = scene_seeds(wildcards.scene)
    for seed in seeds:
        if seed_dir(wildcards.scene, seed) == wildcards.seed_dir:
            return seed
    where = f"results/{wildcards.scene}/{wildcards.method}/{wildcards.seed_dir}"
    layout = "the method's folder itself" if len(seeds) == 1 else "seed<N>/ folders"
    raise WorkflowError(f"{where}: scene {wildcards.scene} trains seeds {seeds} (scenes.{wildcards.scene}.seeds), "
                        f"in {layout}")


def job_seed(wildcards):
    """The seed a training or evaluation job's model is trained with (pretraining: the first)."""
    return seed_of(wildcards) if "seed_dir" in wildcards.keys() else scene_seeds(wildcards.scene)[0]


def severity_option(severity):
    option, _, value = severity.rpartition("_")
    return option, value


def command_options(options):
    """{'beta': 0.02, 'no-clear': True} -> ['--beta', '0.02', '--no-clear']."""
    args = []
    for flag, value in options.items():
        if value is True:
            args.append(f"--{flag}")
        elif value is False:
            continue
        elif isinstance(value, list):
            args += [f"--{flag}", *(f"{item:g}" if isinstance(item, float) else str(item) for item in value)]
        else:
            args += [f"--{flag}", f"{value:g}" if isinstance(value, float) else str(value)]
    return args


# ---- data sets on disk -----------------------------------------------------------------

_reported_missing = set()


def existing_paths(named_paths):
    """`named_paths`: config key -> path that must exist before the run (a data set on disk).

    A missing one is named with its config key. A dry run still builds the DAG (the path
    is left out of the job's inputs); a real run stops with snakemake's missing-input error.
    """
    paths = []
    for key, path in named_paths.items():
        if not Path(path).exists():
            if (key, path) not in _reported_missing:
                _reported_missing.add((key, path))
                action = "a real run will stop here" if workflow.dryrun else "the run stops here"
                logger.error(f"config {key}: {path} does not exist ({action}); "
                             "set the path in config/config.yaml or with --config")
            if workflow.dryrun:
                continue
        paths.append(path)
    return paths


def option_paths(options, key):
    """Config key -> path, for the options that name something on disk."""
    return {f"{key}.options.{flag}": value for flag, value in options.items() if flag in PATH_OPTIONS}


def convert_sources(wildcards):
    recipe, key = IMAGE_SETS[(wildcards.dataset, wildcards.imageset)]
    return existing_paths({f"{key}.path": recipe["path"], **option_paths(recipe.get("options", {}), key)})


def synthesis_sources(wildcards):
    """The clean image set a synthesised set is made from, and any depth folders it reads."""
    recipe, key = IMAGE_SETS[(wildcards.dataset, wildcards.imageset)]
    clean = image_set_inputs(scene_of_dataset(wildcards.dataset), recipe["from"])
    return clean + existing_paths(option_paths(recipe.get("options", {}), key))


def robustness_sources(wildcards):
    """The clean test set the sweep degrades, and any depth folders it reads."""
    scene = SCENES[wildcards.scene]
    clean = image_set_inputs(wildcards.scene, scene["clean_set"], ["test"])
    key = f"scenes.{wildcards.scene}.robustness"
    return clean + existing_paths(option_paths(scene["robustness"].get("options", {}), key))


def pretrained_checkpoint(wildcards):
    key = f"scenes.{wildcards.scene}.pretrain.checkpoint"
    return existing_paths({key: SCENES[wildcards.scene]["pretrain"]["checkpoint"]})


# ---- command lines ------------------------------------------------------------------


def scene_of_dataset(dataset):
    """The first scene (in config order) whose folder is `dataset`: its settings apply."""
    return next(name for name in SCENES if dataset_of(name) == dataset)


def convert_args(wildcards):
    recipe, _ = IMAGE_SETS[(wildcards.dataset, wildcards.imageset)]
    fmt, options = recipe["convert"], dict(recipe.get("options", {}))
    args = [fmt, recipe["path"], f"{DATA}/{wildcards.dataset}", "--name", wildcards.imageset]
    classes = SCENES[scene_of_dataset(wildcards.dataset)]["classes"]
    if fmt in CONVERTERS_WITH_CLASSES and "classes" not in options:
        args += ["--classes", ",".join(classes)]
    if fmt in CONVERTERS_WITH_SPLIT_SEED and "seed" not in options:
        args += ["--seed", str(config["seed"])]
    return shlex.join(args + command_options(options))


def synthesize_args(wildcards):
    """`lcp data synth` arguments of a synthesised image set (from its clean set, both splits)."""
    recipe, _ = IMAGE_SETS[(wildcards.dataset, wildcards.imageset)]
    scene_name = scene_of_dataset(wildcards.dataset)
    source = image_set_paths(scene_name, recipe["from"])
    target = image_set_paths(scene_name, wildcards.imageset)
    args = [recipe["synthesize"], "--src", f"{DATA}/{source['images']}", "--out", f"{DATA}/{target['images']}"]
    for split in SPLITS:
        args += ["--ann", f"{DATA}/{source[split]}", "--ann-out", f"{DATA}/{target[split]}"]
    return shlex.join(args + ["--seed", str(config["seed"])] + command_options(recipe.get("options", {})))


def robustness_args(wildcards):
    """`lcp data synth` arguments of one robustness test set: the clean test images at one severity."""
    scene = SCENES[wildcards.scene]
    source = image_set_paths(wildcards.scene, scene["clean_set"])
    target = robustness_set_paths(wildcards.scene, wildcards.severity)
    option, value = severity_option(wildcards.severity)
    options = dict(scene["robustness"].get("options", {}))
    if dataset_of(wildcards.scene) in DEMO_DATASETS:  # the demo generator leaves its depth maps
        options.setdefault("depth-dir", f"{DATA}/{dataset_of(wildcards.scene)}/depth")
    args = [scene["degradation"], "--src", f"{DATA}/{source['images']}", "--out", f"{DATA}/{target['images']}",
            "--ann", f"{DATA}/{source['test']}", "--ann-out", f"{DATA}/{target['test']}",
            "--seed", str(config["seed"]), f"--{option}", value]
    return shlex.join(args + command_options(options))


def check_args(wildcards):
    """`lcp data check` arguments: the low-quality set against its clean set."""
    scene = SCENES[wildcards.scene]
    clean = image_set_paths(wildcards.scene, scene["clean_set"])
    lowq = image_set_paths(wildcards.scene, scene["lowq_set"])
    args = ["--lowq", f"{DATA}/{lowq['images']}", "--clean", f"{DATA}/{clean['images']}",
            "--ann", *(f"{DATA}/{lowq[split]}" for split in SPLITS),
            "--classes", ",".join(scene["classes"]), "--degradation", scene["degradation"]]
    return shlex.join(args + command_options(scene.get("check_options", {})))


def cfg_options(scene_name, step, test_set=None):
    """--cfg-options of a training or test run: the scene's image sets and classes."""
    scene = SCENES[scene_name]
    train = image_set_paths(scene_name, scene["clean_set" if step == "pretrain" else "lowq_set"])
    test = test_set or train
    classes = scene["classes"]
    options = {
        "data_root": f"{DATA}/",
        "train_img_dir": f"{train['images']}/",
        "train_ann": train["train"],
        "test_img_dir": f"{test['images']}/",
        "test_ann": test["test"],
        "classes": "[" + ",".join(classes) + "]",
        "num_classes": len(classes),
    }
    if step == "lcp":
        options["df_img_dir"] = image_set_paths(scene_name, scene["clean_set"])["images"] + "/"
    options.update(scene[step].get("cfg_options", {}))
    return [f"{key}={value}" for key, value in options.items()]


def preflight(scene_name, step, options):
    """Stop the run, before any job starts and in a dry run too, when the step's mmdet config
    does not take the --cfg-options its jobs would pass (a misspelt key, a value of the wrong
    kind). Called while the DAG is built, for the scenes and steps it holds; each distinct
    config and options is read once. Jobs on a cluster node skip it (the main process checked)."""
    if not workflow.is_main_process:
        return
    step_config = SCENES[scene_name][step]
    try:
        check_model_step(step_config["config"], options, step_config.get("cfg_options", {}),
                         where=f"scenes.{scene_name}.{step}")
    except LCPError as exc:
        stop(f"invalid config: {config_source()}: {exc}")


def pretrained_path(scene_name):
    return f"results/{scene_name}/pretrain/latest.pth"


def run_dir(scene_name, method, seed):
    """results/<scene>/<method>/, or results/<scene>/<method>/seed<N>/ where the scene trains several seeds."""
    return f"results/{scene_name}/{method}/{seed_dir(scene_name, seed)}"


def trained_path(scene_name, method, seed):
    return f"{run_dir(scene_name, method, seed)}latest.pth"


# The argument functions below take wildcards only: snakemake ignores params computed from
# `input` when deciding whether a changed setting calls for a rerun.


def train_args(step):
    """Arguments of `lcp train` after the command (they also identify the run for resuming)."""

    def args(wildcards):
        words = [SCENES[wildcards.scene][step]["config"], "--seed", str(job_seed(wildcards))]
        if step != "pretrain":
            words += ["--load-from", pretrained_path(wildcards.scene)]
        return shlex.join(words + ["--cfg-options"] + cfg_options(wildcards.scene, step))

    return args


def test_args(wildcards):
    """Arguments of `lcp test`: the method's config and checkpoint on the wanted test set."""
    severity = wildcards.get("severity")
    test_set = robustness_set_paths(wildcards.scene, severity) if severity else None
    scene = SCENES[wildcards.scene]
    words = [scene[wildcards.method]["config"], trained_path(wildcards.scene, wildcards.method, seed_of(wildcards)),
             "--eval", "bbox"]
    return shlex.join(words + ["--cfg-options"] + cfg_options(wildcards.scene, wildcards.method, test_set))


def heatmap_args(wildcards):
    """Arguments of `lcp heatmaps`: the scene's LCP model (its first seed's) on the low-quality
    test set, with the evaluation's --cfg-options."""
    scene_name = wildcards.scene
    words = [SCENES[scene_name]["lcp"]["config"], trained_path(scene_name, "lcp", scene_seeds(scene_name)[0]),
             "--out-dir", str(Path(heatmap_paths(scene_name)[0]).parent), "--count", str(HEATMAPS), "--overwrite"]
    return shlex.join(words + ["--cfg-options"] + cfg_options(scene_name, "lcp"))


def training_inputs(step):
    """Inputs of a training step: its config, the data gate, the image sets and the initial weights."""

    def inputs(wildcards):
        preflight(wildcards.scene, step, cfg_options(wildcards.scene, step))
        check_training_sets(wildcards.scene)
        scene = SCENES[wildcards.scene]
        sets = [scene["clean_set"]] if step != "baseline" else []
        sets += [scene["lowq_set"]] if step != "pretrain" else []
        named = {
            "config": scene[step]["config"],
            "check": f"results/{wildcards.scene}/data/check.json",
            "data": [path for set_name in sets for path in image_set_inputs(wildcards.scene, set_name)],
        }
        if step != "pretrain":
            named["init"] = pretrained_path(wildcards.scene)
        return named

    return inputs


def evaluation_inputs(wildcards):
    scene = SCENES[wildcards.scene]
    severity = wildcards.get("severity")
    test_set = robustness_set_paths(wildcards.scene, severity) if severity else None
    preflight(wildcards.scene, wildcards.method, cfg_options(wildcards.scene, wildcards.method, test_set))
    if severity:
        paths = test_set
        data = [f"{DATA}/{paths['images']}", f"{DATA}/{paths['test']}"]
    else:
        data = image_set_inputs(wildcards.scene, scene["lowq_set"], ["test"])
    return {
        "config": scene[wildcards.method]["config"],
        "checkpoint": trained_path(wildcards.scene, wildcards.method, seed_of(wildcards)),
        "data": data,
    }


def heatmap_inputs(wildcards):
    preflight(wildcards.scene, "lcp", cfg_options(wildcards.scene, "lcp"))
    scene = SCENES[wildcards.scene]
    return {
        "config": scene["lcp"]["config"],
        "checkpoint": trained_path(wildcards.scene, "lcp", scene_seeds(wildcards.scene)[0]),
        "data": image_set_inputs(wildcards.scene, scene["lowq_set"], ["test"]),
    }


# ---- targets ------------------------------------------------------------------------


def heatmap_paths(scene):
    """The crux heat maps of a scene's report (`scene` may be the {scene} pattern)."""
    return [f"results/{scene}/report/crux_heatmaps/crux_heatmap_{index}.png" for index in range(HEATMAPS)]


def scene_targets(scene_name):
    targets = [f"results/{scene_name}/report/{name}" for name in ("metrics.csv", "summary.md", "classwise_ap.png")]
    if severities(scene_name):
        targets += [f"results/{scene_name}/report/{name}" for name in ("robustness.csv", "robustness.png")]
    return targets + heatmap_paths(scene_name)


def report_evaluations(wildcards):
    """METHOD[/seedN] -> its evaluation on the low-quality test set, every method and seed."""
    return {
        evaluation_name(wildcards.scene, method, seed): f"{run_dir(wildcards.scene, method, seed)}eval.json"
        for method in METHODS
        for seed in scene_seeds(wildcards.scene)
    }


def robustness_evaluations(wildcards):
    """METHOD[/seedN]@SEVERITY -> its evaluation, for every method, seed and severity of the scene's sweep."""
    return {
        f"{evaluation_name(wildcards.scene, method, seed)}@{severity}":
            f"{run_dir(wildcards.scene, method, seed)}robustness/{severity}.json"
        for method in METHODS
        for seed in scene_seeds(wildcards.scene)
        for severity in severities(wildcards.scene)
    }


# ---- job resources ------------------------------------------------------------------


def job_setting(wildcards, rule_name, key):
    """A resource of one job (see scene_rule_setting)."""
    scene_name = wildcards.get("scene") or scene_of_dataset(wildcards.dataset)
    return scene_rule_setting(config, scene_name, rule_name, key)


def job_resources(rule_name):
    """`resources:` of a rule, per job from the config (slurm executor names)."""
    resources = {
        "gpu": lambda wildcards: job_setting(wildcards, rule_name, "gpus"),
        "cpus_per_task": lambda wildcards: job_setting(wildcards, rule_name, "cpus"),
        "mem_mb": lambda wildcards: job_setting(wildcards, rule_name, "mem_mb"),
        "runtime": lambda wildcards: job_setting(wildcards, rule_name, "runtime"),
        # None leaves the partition to the cluster's default
        "slurm_partition": lambda wildcards: job_setting(wildcards, rule_name, "partition") or None,
    }
    if rule_name in TRAINING_RULES:
        # Several GPUs: one task per GPU (sbatch --gpus=N --ntasks-per-gpu=1 --ntasks=N
        # --nodes=M), and `mpi` makes the job's shell run in the batch step itself, where
        # `lcp train --gpus N` starts the tasks with srun.
        distributed = lambda wildcards: training_processes(wildcards, rule_name) > 1
        resources.update(
            nodes=lambda wildcards: job_setting(wildcards, rule_name, "nodes"),
            tasks=lambda wildcards: training_processes(wildcards, rule_name) if distributed(wildcards) else None,
            tasks_per_gpu=lambda wildcards: 1 if distributed(wildcards) else None,
            mpi=lambda wildcards: "srun" if distributed(wildcards) else None,
        )
    return resources


def training_processes(wildcards, rule_name):
    """A training job runs one process per GPU."""
    return max(job_setting(wildcards, rule_name, "gpus"), 1)


def train_gpus_option(rule_name):
    """`--gpus N` for a training job on several GPUs: `lcp train` then starts one process
    per GPU (srun's tasks inside this SLURM job, torchrun's on one machine).

    Like the job's other resources it is no rerun trigger (a param that takes `input` is
    left out of them): moving a finished training to more GPUs does not retrain it."""

    def option(wildcards, input):
        processes = training_processes(wildcards, rule_name)
        return f"--gpus {processes}" if processes > 1 else ""

    return option


def train_command(inputs):
    """The shell of a training rule. The work dir is claimed and published around the
    training processes (see lcp/tools/workdir.py); `inputs`: the named inputs it records."""
    recorded = " ".join(f"--input {{input.{name}}}" for name in inputs)
    return job_command("lcp workdir begin {params.work_dir} --checkpoint {output.checkpoint}"
                       f" --request {{params.args:q}} {recorded}"
                       " && {params.tracking_env} lcp train {params.args} {params.gpus} {params.tracking}"
                       " --work-dir {params.work_dir} --auto-resume"
                       " && lcp workdir finish {params.work_dir} --checkpoint {output.checkpoint}")


def job_command(command):
    """The shell of a job: `command` with its output in the job's log, and no second run after
    it was refused for a reason a retry cannot fix (an `lcp` command's exit status 2: bad
    input or config); a time limit, a lost node or a crash is retried (see job_retries)."""
    return unfixable_guard(command, "{log}")


def job_retries(rule_name):
    """The rule's retries from the config; None leaves them to --retries. A retry runs the job
    again only when it did not fail for a reason a retry cannot fix (see job_command)."""
    return config.get("retries", {}).get(rule_name)


def forget_unfixable_failures():
    """A new run of the workflow tries again the jobs refused in an earlier one (onstart)."""
    clear_unfixable([log for job in workflow.dag.needrun_jobs() for log in job.log])


def job_threads(rule_name):
    return lambda wildcards: job_setting(wildcards, rule_name, "cpus")


wildcard_constraints:
    scene=alternatives(SCENES),
    method="|".join(METHODS),
    # empty where a scene trains one seed (results/<scene>/<method>/...), else seed<N>/
    seed_dir="(seed[0-9]+/)?",
    dataset=NAME_PATTERN,
    imageset=NAME_PATTERN,
    severity=NAME_PATTERN,
