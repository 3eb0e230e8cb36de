# Glue between the rules and lcp.workflow, which holds the workflow's logic as plain functions
# of the config (scenes, paths, command lines, resources; unit-tested without Snakemake). Here:
# what needs Snakemake itself (the schema check, messages, dry-run state, wildcards). The other
# .smk files hold rules only.

import os
import sys
from pathlib import Path

from jsonschema.exceptions import ValidationError, best_match
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from lcp.errors import LCPError
from lcp.workflow import commands, inputs, paths, resources
from lcp.workflow.checks import converted_set_problem, scene_reference_problems, training_set_problems
from lcp.workflow.converters import SYNTHESIS_PATH_OPTIONS, converter_options, option_paths
from lcp.workflow.preflight import check_model_step, clear_unfixable, unfixable_guard
from lcp.workflow.scenes import (
    METHODS,
    NAME_PATTERN,
    SPLITS,
    alternatives,
    converted_sets,
    data_dir,
    dataset_of,
    demo_datasets,
    image_sets,
    scene_of_dataset,
    scene_seeds,
    synthesized_sets,
)

# Jobs call the `lcp` of the Python environment snakemake runs from, activated or not.
os.environ.update(PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def stop(message):
    """End the run before any job starts, with the message alone (no traceback)."""
    logger.error(message)
    sys.exit(1)


def config_source():
    """The workflow config file(s) this run read, for messages: config/config.yaml and any --configfile."""
    files = [
        os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
        for path in workflow.configfiles
    ]
    return ", ".join(dict.fromkeys(files)) or "config/config.yaml"


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


validate_config(config)
if problems := scene_reference_problems(config):
    stop("invalid config:\n  " + "\n  ".join(problems))
try:
    IMAGE_SETS = image_sets(config)
except LCPError as exc:
    stop(str(exc))

SCENES = config["scenes"]
DATA = data_dir(config)
DEMO_DATASETS = demo_datasets(config)
CONVERTED = converted_sets(config)
SYNTHESIZED = synthesized_sets(config)


# ---- checks while the DAG is built (main process only; each once) ----------------------

_checked = set()


def once(what):
    """True the first time `what` is asked for in the main process (jobs on a cluster node skip the checks)."""
    if what in _checked or not workflow.is_main_process:
        return False
    _checked.add(what)
    return True


def check_converted_sets(scene_name, *set_names):
    """Stop on a converted image set a job reads that lost images since its conversion."""
    dataset = dataset_of(config, scene_name)
    for set_name in set_names:
        if once(("set", dataset, set_name)) and (problem := converted_set_problem(config, dataset, set_name)):
            stop(problem)


def check_training_sets(scene_name):
    """Stop when a scene's training sets cannot train it (see lcp.workflow.checks.training_set_problems)."""
    if dataset_of(config, scene_name) in DEMO_DATASETS or not once(("scene", scene_name)):
        return
    problem, warnings = training_set_problems(config, scene_name, config_source())
    for warning in warnings:
        logger.warning(warning)
    if problem:
        stop(problem)


def preflight(scene_name, step, options):
    """Stop when the step's mmdet config does not take the --cfg-options its jobs would pass
    (a misspelt key, a value of the wrong kind); each distinct config and options is read once."""
    if not workflow.is_main_process:
        return
    step_config = SCENES[scene_name][step]
    try:
        check_model_step(
            step_config["config"], options, step_config.get("cfg_options", {}), where=f"scenes.{scene_name}.{step}"
        )
    except LCPError as exc:
        stop(f"invalid config: {config_source()}: {exc}")


_reported_missing = set()


def existing_paths(named_paths):
    """`named_paths`: config key -> path that must exist before the run (a data set on disk).

    A missing one is named with its config key. A dry run still builds the DAG (the path
    is left out of the job's inputs); a real run stops with snakemake's missing-input error.
    """
    found = []
    for key, path in named_paths.items():
        if not Path(path).exists():
            if (key, path) not in _reported_missing:
                _reported_missing.add((key, path))
                action = "a real run will stop here" if workflow.dryrun else "the run stops here"
                logger.error(
                    f"config {key}: {path} does not exist ({action}); "
                    "set the path in config/config.yaml or with --config"
                )
            if workflow.dryrun:
                continue
        found.append(path)
    return found


# ---- wildcards -------------------------------------------------------------------------


def seed_of(wildcards, method=None):
    """The training seed of a job of the scene's methods, from its {seed_dir} wildcard
    (`method`: the training rule's, else the {method} wildcard)."""
    try:
        return paths.seed_of_dir(config, wildcards.scene, method or wildcards.get("method"), wildcards.seed_dir)
    except LCPError as exc:
        raise WorkflowError(str(exc)) from None


def job_seed(wildcards, method=None):
    """The seed a training or evaluation job's model is trained with (pretraining: the first)."""
    if "seed_dir" in wildcards.keys():
        return seed_of(wildcards, method)
    return scene_seeds(config, wildcards.scene)[0]


def job_scene(wildcards):
    return wildcards.get("scene") or scene_of_dataset(config, wildcards.dataset)


# ---- job settings ----------------------------------------------------------------------


def job_resources(rule_name):
    """`resources:` of a rule, per job from the config (slurm executor names)."""
    return {
        name: (lambda wildcards, name=name: resources.job_resources(config, job_scene(wildcards), rule_name)[name])
        for name in resources.resource_names(rule_name)
    }


def job_threads(rule_name):
    return lambda wildcards: resources.resource_setting(config, job_scene(wildcards), rule_name, "cpus")


def job_retries(rule_name):
    """The rule's retries from the config; None leaves them to --retries. A retry runs the job
    again only when it did not fail for a reason a retry cannot fix (see job_command)."""
    return config.get("retries", {}).get(rule_name)


def job_command(command, then=""):
    """The shell of a job: `command` (then `then`, e.g. log_artifacts) with its output in the
    job's log, and no second run after it was refused for a reason a retry cannot fix (an `lcp`
    command's exit status 2: bad input or config); a time limit, a lost node or a crash is
    retried (see job_retries). A second argument, not `+`, keeps `snakemake --lint` quiet."""
    return unfixable_guard(command + then, "{log}")


def forget_unfixable_failures():
    """A new run of the workflow tries again the jobs refused in an earlier one (onstart)."""
    clear_unfixable([log for job in workflow.dag.needrun_jobs() for log in job.log])


# ---- inputs ---------------------------------------------------------------------------


def convert_sources(wildcards):
    recipe, key = IMAGE_SETS[(wildcards.dataset, wildcards.imageset)]
    takes = converter_options(recipe["convert"]).path_options
    return existing_paths({f"{key}.path": recipe["path"], **option_paths(recipe.get("options", {}), key, takes)})


def synthesis_sources(wildcards):
    """The clean image set a synthesised set is made from, and any depth folders it reads."""
    recipe, key = IMAGE_SETS[(wildcards.dataset, wildcards.imageset)]
    scene_name = scene_of_dataset(config, wildcards.dataset)
    check_converted_sets(scene_name, recipe["from"])
    clean = paths.image_set_files(config, scene_name, recipe["from"])
    return clean + existing_paths(option_paths(recipe.get("options", {}), key, SYNTHESIS_PATH_OPTIONS))


def robustness_sources(wildcards):
    """The clean test set the sweep degrades, and any depth folders it reads."""
    scene = SCENES[wildcards.scene]
    check_converted_sets(wildcards.scene, scene["clean_set"])
    clean = paths.image_set_files(config, wildcards.scene, scene["clean_set"], ["test"])
    key = f"scenes.{wildcards.scene}.robustness"
    return clean + existing_paths(option_paths(scene["robustness"].get("options", {}), key, SYNTHESIS_PATH_OPTIONS))


def check_inputs(wildcards):
    scene = SCENES[wildcards.scene]
    check_converted_sets(wildcards.scene, scene["clean_set"], scene["lowq_set"])
    return {role: paths.image_set_files(config, wildcards.scene, scene[f"{role}_set"]) for role in ("clean", "lowq")}


def pretrained_checkpoint(wildcards):
    key = f"scenes.{wildcards.scene}.pretrain.checkpoint"
    return existing_paths({key: SCENES[wildcards.scene]["pretrain"]["checkpoint"]})


def training_inputs(step):
    def named(wildcards):
        preflight(wildcards.scene, step, commands.cfg_options(config, wildcards.scene, step))
        check_training_sets(wildcards.scene)
        check_converted_sets(wildcards.scene, *inputs.training_sets(config, wildcards.scene, step))
        return inputs.training_inputs(config, wildcards.scene, step)

    return named


def evaluation_inputs(wildcards):
    severity = wildcards.get("severity")
    options = commands.cfg_options(
        config, wildcards.scene, wildcards.method, commands.test_set(wildcards.scene, severity)
    )
    preflight(wildcards.scene, wildcards.method, options)
    if not severity:
        check_converted_sets(wildcards.scene, SCENES[wildcards.scene]["lowq_set"])
    return inputs.evaluation_inputs(config, wildcards.scene, wildcards.method, seed_of(wildcards), severity)


def first_model_inputs(method=None):
    """The method (None: the {method} wildcard)'s model of the first seed on the low-quality test set (heat maps, sample detections)."""

    def named(wildcards):
        model = method or wildcards.method
        preflight(wildcards.scene, model, commands.cfg_options(config, wildcards.scene, model))
        check_converted_sets(wildcards.scene, SCENES[wildcards.scene]["lowq_set"])
        return inputs.first_model_inputs(config, wildcards.scene, model)

    return named


# ---- command lines (from wildcards only: snakemake ignores params computed from `input` when
# deciding whether a changed setting calls for a rerun) -------------------------------------


def test_args(wildcards):
    """Arguments of `lcp test`: the method's config and checkpoint on the wanted test set."""
    return commands.test_args(config, wildcards.scene, wildcards.method, seed_of(wildcards), wildcards.get("severity"))


def training_params(step, rule_name, tracking_step, tracking_method):
    """A training rule's params but its work dir: `lcp train` arguments (they also identify the run
    for resuming), the tracking prefix and flags, and `--gpus N` on several GPUs.

    `gpus` takes `input` so that, like the job's other resources, it is no rerun trigger:
    moving a finished training to more GPUs does not retrain it."""
    return {
        "args": lambda wildcards: commands.train_args(config, wildcards.scene, step, job_seed(wildcards, step)),
        "tracking_env": tracking_env(rule_name),
        "gpus": lambda wildcards, input: resources.train_gpus_option(config, wildcards.scene, rule_name),
        "tracking": tracking_args(tracking_step, tracking_method),
    }


def train_command(recorded_inputs):
    """The shell of a training rule. The work dir is claimed and published around the
    training processes (see lcp/workflow/workdir.py); `recorded_inputs`: the named inputs it records."""
    recorded = " ".join(f"--input {{input.{name}}}" for name in recorded_inputs)
    return job_command(
        "lcp workdir begin {params.work_dir} --checkpoint {output.checkpoint}"
        f" --request {{params.args:q}} {recorded}"
        " && {params.tracking_env} lcp train {params.args} {params.gpus} {params.tracking}"
        " --work-dir {params.work_dir} --auto-resume"
        " && lcp workdir finish {params.work_dir} --checkpoint {output.checkpoint}"
    )


def labelled_pictures(pictures, name, subcategory, caption, **labels):
    """Named outputs `name_<i>` for `pictures`, each marked for the report as 'test image <i+1>'."""
    return {
        f"{name}_{index}": report(
            path,
            caption=caption,
            category="{scene}",
            subcategory=subcategory,
            labels={"image": f"test image {index + 1}", **labels},
        )
        for index, path in enumerate(pictures)
    }


wildcard_constraints:
    scene=alternatives(SCENES),
    method="|".join(METHODS),
    # empty where a scene trains one seed (results/<scene>/<method>/...), else seed<N>/
    seed_dir="(seed[0-9]+/)?",
    dataset=NAME_PATTERN,
    imageset=NAME_PATTERN,
    severity=NAME_PATTERN,
