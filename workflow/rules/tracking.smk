# MLflow tracking (lcp/tracking): one experiment per scene (lcp/<scene>), one parent run per
# scene for each invocation of the workflow, and every training/evaluation job's run
# beneath it, tagged with its rule, wildcards and training seed (lcp.seed). The Snakefile's
# onstart/onsuccess/onerror open and close the invocation; jobs learn the store and their
# parent from the environment (exported to SLURM jobs as well).

import os
import shlex
import uuid

from lcp.workflow.scenes import scene_of_dataset

TRACKING = config["tracking"]["enabled"]

if TRACKING:
    from lcp.tracking import close_invocation, open_invocation, resolve_target, snakemake_env_prefix

    # The store: $MLFLOW_TRACKING_URI, else tracking.uri, else results/mlflow/ in the checkout.
    os.environ.update(MLFLOW_TRACKING_URI=resolve_target(config["tracking"]["uri"] or None).uri)

    envvars:
        "MLFLOW_TRACKING_URI",


def tracked_scenes():
    """The scenes of this invocation: those in `run` and those of the jobs to run."""
    scenes = set(config["run"])
    for job in workflow.dag.needrun_jobs():
        scene = job.wildcards.get("scene")
        if scene is None and job.wildcards.get("dataset"):
            scene = scene_of_dataset(config, job.wildcards.get("dataset"))
        if scene is not None:
            scenes.add(scene)
    return sorted(scenes)


def start_tracking():
    # Each run of the workflow is a new invocation, even from a shell that still holds an
    # earlier invocation's LCP_* variables (whose parent runs may live in another store).
    if TRACKING:
        open_invocation(
            tracked_scenes(),
            tracking_uri=config["tracking"]["uri"] or None,
            invocation_id=uuid.uuid4().hex,
            descriptions={name: scene.get("description") for name, scene in config["scenes"].items()},
        )


def finish_tracking(status):
    if TRACKING:
        close_invocation(status, tracking_uri=config["tracking"]["uri"] or None)


# The two functions below take `input` although they do not read it: snakemake leaves such
# params out of its rerun triggers, and switching tracking on or off changes no result.


def tracking_env(rule_name):
    """Shell prefix that names the job's rule, wildcards and training seed for its run's tags."""

    def prefix(wildcards, input):
        return snakemake_env_prefix(rule_name, wildcards, seed=session.job_seed(wildcards)) if TRACKING else ""

    return prefix


def tracking_args(step, method=None):
    """`lcp train/test` flags naming the job's run <scene>/<step>/<method>[/<severity>]."""

    def args(wildcards, input):
        if not TRACKING:
            return "--no-track"
        words = ["--track", "--scene", wildcards.scene, "--step", step, "--method", method or wildcards.method]
        if wildcards.get("severity"):
            words += ["--variant", wildcards.severity]
        return shlex.join(words)

    return args


def log_artifacts(rule_name, step, variant=None):
    """Shell text that logs a job's outputs as artifacts of a run <scene>/<step>[/<variant>], to end
    the job's command with (empty without tracking). It is part of the command, not a param, so
    that it stays out of the job parameters Snakemake's report shows beside each result."""
    if not TRACKING:
        return ""
    mark = "SCENE_WILDCARD"
    env = snakemake_env_prefix(rule_name, {"scene": mark}).replace("{", "{{").replace("}", "}}")
    env = env.replace(mark, "{wildcards.scene}")  # scene names are [A-Za-z0-9_.-]: safe in json and quotes
    words = ["--step", step] + (["--variant", variant] if variant else [])
    return f" && {env} lcp tracking log-artifacts {{output:q}} --scene {{wildcards.scene:q}} {shlex.join(words)}"
