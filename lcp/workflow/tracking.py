"""MLflow tracking (lcp/tracking) as the workflow's jobs see it, from the config's `tracking`
section: which scenes an invocation opens parent runs for, and the shell text a job's command
carries (the environment naming its rule, wildcards and seed; the `lcp train/test` flags naming
its run; the `lcp tracking log-artifacts` that ends a check or report job). Each is empty, or
`--no-track`, when tracking is off.

workflow/rules/tracking.smk binds these to Snakemake (its DAG's jobs, the params' closures,
onstart/onsuccess/onerror); here they are plain functions, unit-tested without Snakemake.
Wildcards: Snakemake's (or a dict where they are read with `get(name)` only).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lcp.tracking.settings import ENV_TRACKING, LOCAL_STORE_DIR, snakemake_env_prefix
from lcp.workflow.scenes import scene_of_job, scene_seeds, severities

if TYPE_CHECKING:
    from lcp.workflow.session import Wildcards


def enabled(config: Mapping) -> bool:
    """Whether jobs are tracked (`tracking.enabled`)."""
    return config["tracking"]["enabled"]


def configured_uri(config: Mapping) -> str:
    """`tracking.uri`, else the store beside the working directory's results/ (results/mlflow/mlflow.db);
    $MLFLOW_TRACKING_URI goes before either. Not the enclosing git checkout's, as for `lcp train`:
    a project folder (`--directory`) inside another checkout keeps its own store."""
    return config["tracking"]["uri"] or f"sqlite:///{Path.cwd() / LOCAL_STORE_DIR / 'mlflow.db'}"


def moved_store_warning(uri: str) -> str | None:
    """A warning for a local store whose artifact locations point to another folder than its
    own: moved or copied with its checkout, its new runs' artifacts would go to the old folder,
    silently. A warning, not a stop: a store may keep its artifacts elsewhere on purpose, and
    `--report` or `--unlock` log nothing. None for any other store."""
    from lcp.tracking.relocate import moved_from
    from lcp.tracking.settings import sqlite_database

    database = sqlite_database(uri)
    old = database and moved_from(database)
    if not old:
        return None
    return (
        f"{database}: this MLflow store's artifacts go to {old}: if the store was moved or copied from "
        f"there, its new runs' artifacts will too; run `lcp tracking relocate {database}` first"
    )


def tracked_scenes(config: Mapping, jobs_wildcards: Iterable[Mapping]) -> list[str]:
    """The scenes of an invocation, sorted: those in `run` and those of the jobs to run
    (`jobs_wildcards`: each job's wildcards); a data set's job counts for its folder's first scene."""
    jobs_scenes = {scene_of_job(config, wildcards) for wildcards in jobs_wildcards}
    return sorted(set(config["run"]) | (jobs_scenes - {None}))


def scene_descriptions(config: Mapping) -> dict[str, str | None]:
    """Each scene's `description`, for its experiment's note."""
    return {name: scene.get("description") for name, scene in config["scenes"].items()}


def scene_plans(config: Mapping) -> dict[str, dict[str, list]]:
    """Each scene's seeds and sweep severities, for its parent run (lcp compare reads them)."""
    return {
        name: {"seeds": scene_seeds(config, name), "variants": severities(config, name)} for name in config["scenes"]
    }


def tracking_switch(config: Mapping) -> dict[str, str]:
    """The environment that tells a check or report job's log-artifacts whether to log."""
    return {ENV_TRACKING: "on" if enabled(config) else "off"}


def job_env(config: Mapping, rule_name: str, wildcards: Mapping, job_seed: Callable[[Mapping], int]) -> str:
    """Shell prefix naming a training or evaluation job's rule, wildcards and training seed
    (`job_seed(wildcards)`, asked only when tracking is on) for its run's tags; empty without tracking."""
    if not enabled(config):
        return ""
    return snakemake_env_prefix(rule_name, wildcards, seed=job_seed(wildcards))


def job_flags(config: Mapping, wildcards: Wildcards, step: str, method: str | None = None) -> str:
    """`lcp train/test` flags naming the job's run <scene>/<step>/<method>[/<severity>] (lcp.tracking
    adds /seed<N> for a scene of several seeds; `method` None: the {method} wildcard), or `--no-track`."""
    if not enabled(config):
        return "--no-track"
    words = ["--track", "--scene", wildcards.scene, "--step", step, "--method", method or wildcards.method]
    if wildcards.get("severity"):
        words += ["--variant", wildcards.severity]
    return shlex.join(words)


def log_artifacts(rule_name: str, step: str, variant: str | None = None) -> str:
    """Shell text that logs a job's outputs as artifacts of a run <scene>/<step>[/<variant>], to
    end the job's command with. It is a pattern for Snakemake's shell formatting: the
    environment prefix's braces are doubled, and `{wildcards.scene}`, `{wildcards.scene:q}` and
    `{output:q}` are left for Snakemake to fill in. It is part of the command, not a param, so
    that it stays out of the job parameters Snakemake's report shows beside each result, and
    the same with tracking on or off (`tracking_switch` tells the job which), so that switching
    tracking changes no job's code: that reran the data check, and every training after it."""
    mark = "SCENE_WILDCARD"
    env = snakemake_env_prefix(rule_name, {"scene": mark}).replace("{", "{{").replace("}", "}}")
    env = env.replace(mark, "{wildcards.scene}")  # scene names are [A-Za-z0-9_.-]: safe in json and quotes
    words = ["--step", step] + (["--variant", variant] if variant else [])
    return f" && {env} lcp tracking log-artifacts {{output:q}} --scene {{wildcards.scene:q}} {shlex.join(words)}"
