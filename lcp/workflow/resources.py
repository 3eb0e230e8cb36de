"""A job's resources from the config, and how a training job on several GPUs maps onto SLURM.

The config's `resources` are layered: a scene's setting for the rule, else the scene's
`default`, else the global setting for the rule, else the global `default` (config/config.yaml
holds the one set of defaults). Site settings (partition, account, qos, constraint, gres,
slurm_extra) have no default there: the profile's default-resources may set them.
"""

from __future__ import annotations

from collections.abc import Mapping

from lcp.workflow.scenes import TRAINING_RULES

# The config keys and the names of Snakemake's slurm executor for them.
EXECUTOR_NAMES = {"gpus": "gpu", "cpus": "cpus_per_task", "mem_mb": "mem_mb", "runtime": "runtime"}
# Site settings, passed on as they are. A rule gets one only where the config sets it for the
# rule (in any scene, or as a `default`): elsewhere the profile's default-resources apply, which
# a rule's resource of None would drop.
SITE_NAMES = {
    "partition": "slurm_partition",
    "account": "slurm_account",
    "qos": "qos",
    "constraint": "constraint",
    "gres": "gres",
    "slurm_extra": "slurm_extra",
}


def resource_setting(config: Mapping, scene_name: str, rule_name: str, key: str):
    """A resource of a scene's rule (see the module's doc); None where nothing sets it, except
    `nodes`: 1."""
    value = 1 if key == "nodes" else None
    for resources in (config.get("resources", {}), config["scenes"][scene_name].get("resources", {})):
        for layer in ("default", rule_name):
            value = resources.get(layer, {}).get(key, value)
    return value


def training_processes(config: Mapping, scene_name: str, rule_name: str) -> int:
    """A training job runs one process per GPU."""
    return max(resource_setting(config, scene_name, rule_name, "gpus") or 0, 1)


def job_resources(config: Mapping, scene_name: str, rule_name: str) -> dict:
    """`resources:` of one job, with the slurm executor's names (None: the executor's default)."""
    resources = {name: resource_setting(config, scene_name, rule_name, key) for key, name in EXECUTOR_NAMES.items()}
    for key in site_settings(config, rule_name):
        # None (or ""): not set for this scene, so the cluster's default (a partition's, an account's)
        resources[SITE_NAMES[key]] = resource_setting(config, scene_name, rule_name, key) or None
    if "gpu" in (resources.get("gres") or ""):
        # GPUs asked for as generic resources (gres: "gpu:a100:1", per node), not with --gpus as
        # well; `gpus` still counts the job's processes
        resources["gpu"] = None
    if rule_name in TRAINING_RULES:
        # Several GPUs: one task per GPU (sbatch --gpus=N --ntasks-per-gpu=1 --ntasks=N
        # --nodes=M), and `mpi` makes the job's shell run in the batch step itself, where
        # `lcp train --gpus N` starts the tasks with srun.
        processes = training_processes(config, scene_name, rule_name)
        distributed = processes > 1
        resources.update(
            nodes=resource_setting(config, scene_name, rule_name, "nodes"),
            tasks=processes if distributed else None,
            tasks_per_gpu=1 if distributed else None,
            mpi="srun" if distributed else None,
        )
    return resources


def train_gpus_option(config: Mapping, scene_name: str, rule_name: str) -> str:
    """`--gpus N` for a training job on several GPUs: `lcp train` then starts one process
    per GPU (srun's tasks inside this SLURM job, torchrun's on one machine)."""
    processes = training_processes(config, scene_name, rule_name)
    return f"--gpus {processes}" if processes > 1 else ""


def site_settings(config: Mapping, rule_name: str) -> list[str]:
    """The keys of SITE_NAMES that the config sets for a rule in any scene."""
    layers = [config.get("resources", {})] + [scene.get("resources", {}) for scene in config["scenes"].values()]
    settings = [layer.get(name, {}) for layer in layers for name in ("default", rule_name)]
    return [key for key in SITE_NAMES if any(key in setting for setting in settings)]


def resource_names(config: Mapping, rule_name: str) -> tuple[str, ...]:
    """The names job_resources gives a rule's jobs."""
    extra = ("nodes", "tasks", "tasks_per_gpu", "mpi") if rule_name in TRAINING_RULES else ()
    return (*EXECUTOR_NAMES.values(), *(SITE_NAMES[key] for key in site_settings(config, rule_name)), *extra)
