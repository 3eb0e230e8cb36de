# MLflow tracking (lcp/tracking): one experiment per scene (lcp/<scene>), one parent run per
# scene for each invocation of the workflow, and every training/evaluation job's run
# beneath it, tagged with its rule, wildcards and training seed (lcp.seed). The Snakefile's
# onstart/onsuccess/onerror open and close the invocation; jobs learn the store and their
# parent from the environment (exported to SLURM jobs as well). What the jobs' commands carry
# and which scenes an invocation opens is lcp.workflow.tracking's; here only the glue to
# Snakemake (the exported store, the DAG's jobs, the params' closures).

import os
import uuid

from lcp.workflow import tracking

TRACKING = tracking.enabled(config)
# read by the jobs' log-artifacts, whose command is the same with tracking on or off
os.environ.update(tracking.tracking_switch(config))

if TRACKING:
    from lcp.tracking import close_invocation, open_invocation, resolve_target

    # The store: $MLFLOW_TRACKING_URI, else tracking.uri, else results/mlflow/ beside results/.
    os.environ.update(MLFLOW_TRACKING_URI=resolve_target(tracking.configured_uri(config)).uri)
    # once, by the process that runs the workflow (a SLURM job's own snakemake reads this file too)
    if workflow.is_main_process and (warning := tracking.moved_store_warning(os.environ["MLFLOW_TRACKING_URI"])):
        logger.warning(warning)

    envvars:
        "MLFLOW_TRACKING_URI",


def start_tracking():
    # Each run of the workflow is a new invocation, even from a shell that still holds an
    # earlier invocation's LCP_* variables (whose parent runs may live in another store).
    # --touch runs nothing: no invocation (it left an empty FINISHED parent run per scene).
    if TRACKING and not workflow.touch:
        open_invocation(
            tracking.tracked_scenes(config, [job.wildcards for job in workflow.dag.needrun_jobs()]),
            tracking_uri=tracking.configured_uri(config),
            invocation_id=uuid.uuid4().hex,
            descriptions=tracking.scene_descriptions(config),
            plans=tracking.scene_plans(config),
        )


def finish_tracking(status, log):
    # `log`: Snakemake's log file(s) of this run
    if TRACKING and not workflow.touch:
        logs = [log] if isinstance(log, str) else list(log or [])
        close_invocation(status, tracking_uri=tracking.configured_uri(config), workflow_logs=logs)


def results_pointers():
    return session.results_pointers(os.environ["MLFLOW_TRACKING_URI"] if TRACKING else None, CALLER_PATH)


# The params below take `input` although they do not read it: snakemake leaves such params
# out of its rerun triggers, and switching tracking on or off changes no result.


def tracking_env(rule_name):
    """Param: the job's rule, wildcards and training seed for its run's tags (tracking.job_env)."""
    return lambda wildcards, input: tracking.job_env(config, rule_name, wildcards, session.job_seed)


def tracking_args(step, method=None):
    """Param: `lcp train/test` flags naming the job's run (tracking.job_flags)."""
    return lambda wildcards, input: tracking.job_flags(config, wildcards, step, method)


def log_artifacts(rule_name, step, variant=None):
    """The end of a check or report job's command (tracking.log_artifacts): not a param, so that
    it stays out of the job parameters Snakemake's report shows beside each result."""
    return tracking.log_artifacts(rule_name, step, variant)
