"""The command line of each workflow job: the arguments after `lcp data convert`, `lcp data
synth`, `lcp data check`, `lcp train`, `lcp test`, `lcp heatmaps` and `lcp report`, each a
shell-quoted string built from the config alone (Snakemake reruns a job whose command changed);
and the shell around a job's commands (job_command, train_command).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from lcp.data import SPLITS
from lcp.workflow import paths
from lcp.workflow.converters import converter_options
from lcp.workflow.preflight import unfixable_guard
from lcp.workflow.scenes import (
    METHODS,
    data_dir,
    dataset_of,
    demo_datasets,
    evaluation_name,
    image_sets,
    scene_of_dataset,
    scene_seeds,
    severities,
    severity_option,
)


def job_command(command: str, then: str = "") -> str:
    """The shell of a job: `command` (then `then`, e.g. tracking.smk's log_artifacts) with its
    output in the job's log, and no second run after it was refused for a reason a retry cannot
    fix (an `lcp` command's exit status 2: bad input or config); a time limit, a lost node or a
    crash is retried (the rule's `retries`). A second argument, not `+`, keeps `snakemake --lint`
    quiet."""
    return unfixable_guard(command + then, "{log}")


def train_command(recorded_inputs: Sequence[str]) -> str:
    """The shell of a training rule. The work dir is claimed and published around the training
    processes (see lcp/workflow/workdir.py); `recorded_inputs`: the named inputs it records."""
    recorded = " ".join(f"--input {{input.{name}}}" for name in recorded_inputs)
    return job_command(
        "lcp workdir begin {params.work_dir} --checkpoint {output.checkpoint}"
        f" --request {{params.args:q}} {recorded}"
        " && {params.tracking_env} lcp train {params.args} {params.gpus} {params.tracking}"
        " --work-dir {params.work_dir} --auto-resume"
        " && lcp workdir finish {params.work_dir} --checkpoint {output.checkpoint}"
    )


# The flags of the data commands that the workflow gives itself (the rules' --workers from the
# job's threads, --report of the check, ...): a scene's options may not repeat them, since
# argparse keeps the last one given and one of the two would be dropped without a word.
WORKFLOW_FLAGS = {
    "convert": frozenset({"name", "workers"}),
    "synth": frozenset({"src", "out", "ann", "ann-out", "workers"}),
    "check": frozenset({"lowq", "clean", "ann", "classes", "degradation", "workers", "report"}),
}


def command_options(options: Mapping, repeated: frozenset[str] = frozenset()) -> list[str]:
    """{'beta': 0.02, 'no-clear': True} -> ['--beta', '0.02', '--no-clear']; a list gives the flag
    its values, or for a flag in `repeated` (one value each, argparse's append) one flag per value."""
    args = []
    for flag, value in options.items():
        if value is True:
            args.append(f"--{flag}")
        elif value is False:
            continue
        elif isinstance(value, list):
            values = [f"{item:g}" if isinstance(item, float) else str(item) for item in value]
            if flag in repeated:
                args += [word for item in values for word in (f"--{flag}", item)]
            else:
                args += [f"--{flag}", *values]
        else:
            args += [f"--{flag}", f"{value:g}" if isinstance(value, float) else str(value)]
    return args


def convert_args(config: Mapping, dataset: str, set_name: str) -> str:
    """`lcp data convert` arguments of a converted image set: the scene's classes and the
    config's seed where the format takes them and the recipe does not set them."""
    recipe, _ = image_sets(config)[(dataset, set_name)]
    fmt, options = recipe["convert"], dict(recipe.get("options", {}))
    args = [fmt, recipe["path"], f"{data_dir(config)}/{dataset}", "--name", set_name]
    takes = converter_options(fmt)
    if takes.takes_classes and "classes" not in options:
        args += ["--classes", ",".join(config["scenes"][scene_of_dataset(config, dataset)]["classes"])]
    if takes.takes_seed and "seed" not in options:
        args += ["--seed", str(config["seed"])]
    return shlex.join(args + command_options(options, takes.repeated))


def synthesize_args(config: Mapping, dataset: str, set_name: str) -> str:
    """`lcp data synth` arguments of a synthesised image set (from its clean set, both splits)."""
    recipe, _ = image_sets(config)[(dataset, set_name)]
    data, scene_name = data_dir(config), scene_of_dataset(config, dataset)
    source = paths.image_set_paths(config, scene_name, recipe["from"])
    target = paths.image_set_paths(config, scene_name, set_name)
    args = [recipe["synthesize"], "--src", f"{data}/{source['images']}", "--out", f"{data}/{target['images']}"]
    for split in SPLITS:
        args += ["--ann", f"{data}/{source[split]}", "--ann-out", f"{data}/{target[split]}"]
    return shlex.join(args + ["--seed", str(config["seed"])] + command_options(recipe.get("options", {})))


def robustness_args(config: Mapping, scene_name: str, severity: str) -> str:
    """`lcp data synth` arguments of one robustness test set: the clean test images at one severity."""
    scene, data = config["scenes"][scene_name], data_dir(config)
    source = paths.image_set_paths(config, scene_name, scene["clean_set"])
    target = paths.robustness_set(scene_name, severity)
    option, value = severity_option(severity)
    options = dict(scene["robustness"].get("options", {}))
    dataset = dataset_of(config, scene_name)
    if dataset in demo_datasets(config):  # the demo generator leaves its depth maps
        options.setdefault("depth-dir", f"{data}/{dataset}/depth")
    args = [
        scene["degradation"],
        "--src",
        f"{data}/{source['images']}",
        "--out",
        f"{data}/{target['images']}",
        "--ann",
        f"{data}/{source['test']}",
        "--ann-out",
        f"{data}/{target['test']}",
        "--seed",
        str(config["seed"]),
        f"--{option}",
        value,
    ]
    return shlex.join(args + command_options(options))


def check_args(config: Mapping, scene_name: str) -> str:
    """`lcp data check` arguments: the low-quality set against its clean set."""
    scene, data = config["scenes"][scene_name], data_dir(config)
    clean = paths.image_set_paths(config, scene_name, scene["clean_set"])
    lowq = paths.image_set_paths(config, scene_name, scene["lowq_set"])
    args = [
        "--lowq",
        f"{data}/{lowq['images']}",
        "--clean",
        f"{data}/{clean['images']}",
        "--ann",
        *(f"{data}/{lowq[split]}" for split in SPLITS),
        "--classes",
        ",".join(scene["classes"]),
        "--degradation",
        scene["degradation"],
    ]
    return shlex.join(args + command_options(scene.get("check_options", {})))


def cfg_options(config: Mapping, scene_name: str, step: str, test_set: Mapping | None = None) -> list[str]:
    """--cfg-options of a training or test run: the scene's image sets and classes, then the
    step's own `cfg_options`; `test_set` (paths.robustness_set) replaces the low-quality test set."""
    scene = config["scenes"][scene_name]
    train = paths.image_set_paths(config, scene_name, scene["clean_set" if step == "pretrain" else "lowq_set"])
    test = test_set or train
    classes = scene["classes"]
    options = {
        "data_root": f"{data_dir(config)}/",
        "train_img_dir": f"{train['images']}/",
        "train_ann": train["train"],
        "test_img_dir": f"{test['images']}/",
        "test_ann": test["test"],
        "classes": "[" + ",".join(classes) + "]",
        "num_classes": len(classes),
    }
    if step == "lcp":  # drawn from the clean set's train split: the test images' originals stay unseen
        clean = paths.image_set_paths(config, scene_name, scene["clean_set"])
        options["df_img_dir"] = clean["images"] + "/"
        options["df_ann"] = clean["train"]
    options.update(scene[step].get("cfg_options", {}))
    return [f"{key}={mmcv_value(value)}" for key, value in options.items()]


def mmcv_value(value) -> str:
    """A cfg_options value as mmcv's --cfg-options reads it: a YAML list [1, 1, 4] as [1,1,4]."""
    return "[" + ",".join(map(str, value)) + "]" if isinstance(value, list) else str(value)


def train_args(config: Mapping, scene_name: str, step: str, seed: int) -> str:
    """Arguments of `lcp train` after the command (they also identify the run for resuming)."""
    words = [config["scenes"][scene_name][step]["config"], "--seed", str(seed)]
    if step != "pretrain":
        words += ["--load-from", paths.pretrained(scene_name)]
    return shlex.join(words + ["--cfg-options"] + cfg_options(config, scene_name, step))


def test_set(scene_name: str, severity: str | None) -> dict[str, str] | None:
    """The robustness test set of a severity; None: the scene's low-quality test set."""
    return paths.robustness_set(scene_name, severity) if severity else None


def test_args(config: Mapping, scene_name: str, method: str, seed: int, severity: str | None = None) -> str:
    """Arguments of `lcp test`: the method's config and checkpoint on the wanted test set."""
    words = [
        config["scenes"][scene_name][method]["config"],
        paths.trained(config, scene_name, method, seed),
        "--eval",
        "bbox",
    ]
    options = cfg_options(config, scene_name, method, test_set(scene_name, severity))
    return shlex.join(words + ["--cfg-options"] + options)


def heatmap_args(config: Mapping, scene_name: str) -> str:
    """Arguments of `lcp heatmaps`: the scene's LCP model (its first seed's) on the low-quality
    test set, with the evaluation's --cfg-options."""
    words = [
        config["scenes"][scene_name]["lcp"]["config"],
        paths.trained(config, scene_name, "lcp", scene_seeds(config, scene_name)[0]),
        "--out-dir",
        str(Path(paths.heatmaps(scene_name)[0]).parent),
        "--count",
        str(paths.HEATMAPS),
        "--overwrite",
    ]
    return shlex.join(words + ["--cfg-options"] + cfg_options(config, scene_name, "lcp"))


def sample_detection_args(config: Mapping, scene_name: str, method: str) -> str:
    """`lcp report detections` arguments: the method's model (first seed's) on the low-quality test set."""
    words = [
        config["scenes"][scene_name][method]["config"],
        paths.trained(config, scene_name, method, scene_seeds(config, scene_name)[0]),
    ]
    return shlex.join(words + ["--cfg-options"] + cfg_options(config, scene_name, method))


def report_evaluations(config: Mapping, scene_name: str) -> dict[str, str]:
    """METHOD[/seedN] -> its evaluation on the low-quality test set, every method and seed."""
    return {
        evaluation_name(config, scene_name, method, seed): paths.evaluation(
            scene_name, method, paths.seed_dir(config, scene_name, seed)
        )
        for method in METHODS
        for seed in scene_seeds(config, scene_name)
    }


def robustness_evaluations(config: Mapping, scene_name: str) -> dict[str, str]:
    """METHOD[/seedN]@SEVERITY -> its evaluation, for every method, seed and severity of the scene's sweep."""
    return {
        f"{evaluation_name(config, scene_name, method, seed)}@{severity}": paths.robustness_evaluation(
            scene_name, method, paths.seed_dir(config, scene_name, seed), severity
        )
        for method in METHODS
        for seed in scene_seeds(config, scene_name)
        for severity in severities(config, scene_name)
    }


def report_args(config: Mapping, scene_name: str) -> str:
    """`lcp report metrics` arguments: every evaluation, and the sample pictures for the summary page."""
    words = [f"--eval={name}={path}" for name, path in report_evaluations(config, scene_name).items()]
    pictures = {method: paths.sample_detections(scene_name, method) for method in METHODS}
    words += [
        f"--samples={method}={pictures[method][index]}"
        for index in range(paths.SAMPLE_DETECTIONS)
        for method in METHODS
    ]
    return shlex.join(words)


def robustness_report_args(evaluations: Mapping[str, str]) -> str:
    """`lcp report robustness` arguments: NAME@SEVERITY -> evaluation file."""
    return shlex.join(f"--eval={name}={path}" for name, path in evaluations.items())
