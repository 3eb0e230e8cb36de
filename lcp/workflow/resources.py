"""A job's resources from the config, and how a training job on several GPUs maps onto SLURM.

The config's `resources` are layered: a scene's setting for the rule, else the scene's
`default`, else the global setting for the rule, else the global `default` (config/config.yaml
holds the one set of defaults).
"""

from __future__ import annotations

from collections.abc import Mapping

from lcp.workflow.scenes import TRAINING_RULES

# The config keys and the names of Snakemake's slurm executor for them.
EXECUTOR_NAMES = {"gpus": "gpu", "cpus": "cpus_per_task", "mem_mb": "mem_mb", "runtime": "runtime"}


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
    # None leaves the partition to the cluster's default
    resources["slurm_partition"] = resource_setting(config, scene_name, rule_name, "partition") or None
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


def resource_names(rule_name: str) -> tuple[str, ...]:
    """The names job_resources gives a rule's jobs."""
    extra = ("nodes", "tasks", "tasks_per_gpu", "mpi") if rule_name in TRAINING_RULES else ()
    return (*EXECUTOR_NAMES.values(), "slurm_partition", *extra)
