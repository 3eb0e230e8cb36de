"""MLflow tracking of every pretraining, training and evaluation run (workflow or command line).

Where runs go
    MLFLOW_TRACKING_URI if set, else the URI given (workflow config `tracking.uri`,
    `--tracking-uri`), else the local store `sqlite:///<checkout>/results/mlflow/mlflow.db`
    with artifacts in results/mlflow/artifacts/. Browse the local store, no server needed:
        mlflow ui --backend-store-uri sqlite:///results/mlflow/mlflow.db
    A team server (`mlflow server --host 127.0.0.1 ...` on a head node) works the same way:
    export MLFLOW_TRACKING_URI=http://HOST:PORT before `snakemake` (SLURM jobs inherit it).
    A local store moved or copied elsewhere: `lcp tracking relocate` (relocate.py).

Names
    One experiment per scene, `lcp/<scene>`: a model-training experiment (tag
    mlflow.experimentKind) with the scene's description. One run per job, named
    `<scene>/<step>/<method>[/<variant>][/seed<N>]` with steps pretrain, train, evaluate (check,
    report for artifact runs) and methods baseline, lcp (seed<N> for a scene of several seeds);
    tags lcp.scene, lcp.step, lcp.method, lcp.variant carry the same, lcp.seed the model's
    training seed. Each workflow invocation has a
    parent run per scene (`<scene>/workflow/<time>`, tag lcp.role=invocation) with the job runs
    beneath it; when the invocation closes, the parent holds each child's AP as metrics and the
    table summary/children.md. A registered model per scene and method: `lcp-<scene>-<method>`.

What a run holds
    Params: a curated set (params.training_params, data fingerprints, versions, git state); the
    resolved config is the artifact config/config.py. Dataset inputs: the annotation files.
    Metrics (metrics.py): AP in percent (test/AP, val/AP, .../AP/<class>), loss series per LCP
    training mode (train/catch_up/*, train/crux/*), epoch/* (images/s, the learner trained, the crux
    mask's health), system/* (MLflow's monitor). hook.py lists what a training records.

How the workflow uses it (workflow/rules/tracking.smk, its logic in lcp/workflow/tracking.py)
    onstart opens an invocation: open_invocation(scenes, tracking_uri=, invocation_id=<new>,
    descriptions=) creates the parents (only the workflow's own process ever does) and exports the
    environment below; onsuccess / onerror call close_invocation("FINISHED" / "FAILED"). Each job's
    command starts with snakemake_env_prefix(rule, wildcards, seed=) and passes `lcp train` /
    `lcp test` the flags --track --scene --step --method [--variant] (--no-track when tracking is
    off); check and report jobs end with `lcp tracking log-artifacts`. Shell equivalents of the
    invocation: `eval "$(lcp tracking open-invocation --scene S ...)"`, `lcp tracking
    close-invocation --status FAILED`.

Environment (set by the workflow, read by jobs; settings.py)
    MLFLOW_TRACKING_URI          the store (open_invocation exports the resolved one)
    LCP_INVOCATION_ID            id of the workflow invocation (tag lcp.invocation_id)
    LCP_MLFLOW_PARENT_RUN_IDS    json {scene: parent run id}
    LCP_SNAKEMAKE_RULE           the job's rule name (tag snakemake.rule)
    LCP_SNAKEMAKE_WILDCARDS      json {wildcard: value} (tags snakemake.wildcard.<name>)
    LCP_SEED                     the training seed of the job's model (tag lcp.seed)
    LCP_REGISTER_MODEL           1: trainings upload and register their final checkpoint
    SLURM_JOB_ID, SLURMD_NODENAME are recorded as tags slurm.job_id / slurm.node, with host.
    MLFLOW_HTTP_REQUEST_MAX_RETRIES/_TIMEOUT default to 0 / 5 s here (a dead server costs seconds).

Commands (lcp/commands/: compare.py, tracking.py, and the flags of train/test in tracking_flags.py)
    lcp train CONFIG --track [--scene S --step pretrain|train --method baseline|lcp] [--log-checkpoint]
    lcp test CONFIG CKPT --eval-out J --track [--scene S --method M --variant beta_0.02]
        Tracking is on with --track/--tracking-uri, or when MLFLOW_TRACKING_URI is set and
        --no-track is not given; off otherwise (tests and the demo run without it).
    lcp compare                       our runs beside the paper's numbers (comparison.py, comparison_output.py)
    lcp tracking sync WORK_DIR...     replay what could not be sent (see below)
    lcp tracking uri | relocate       the store in use; repair a moved store
    lcp tracking open-invocation | close-invocation | log-artifacts   plumbing for the workflow

Python API (plain arguments)
    add_tracking(cfg, scene=, step=, method=, ...)   append LCPMlflowLoggerHook to cfg.log_config
    log_evaluation(eval_json, scene=, method=, ...)  one evaluation run from `lcp test`'s json
    log_files(paths, scene=, step=, ...)             a run holding files as artifacts
    open_invocation / close_invocation               a workflow invocation's parent runs (invocation.py)
    LCPMlflowLoggerHook (hook.py)                    the mmcv hook; what it records is computed by
                                                     training_record.py and throughput.py

When the tracking server is unreachable (at start or mid-run), nothing fails: the run (run.py)
warns once, keeps what it cannot send in <work dir>/mlflow-pending/<run key>.jsonl (journal.py)
and replays it (replay.py, through sender.py and client.py) when the server answers again (tried
every 30 s) or with `lcp tracking sync WORK_DIR`; every record reaches MLflow exactly once. Sync
sends to --tracking-uri, else MLFLOW_TRACKING_URI, else the URI the run used; it never drops a
record: what cannot be placed (server down, a server without that run, a deleted run, a value
MLflow refuses) stays queued and sync exits non-zero with the reason. Commands that only read
(`lcp compare`, `lcp tracking uri`) never create a store.
"""

import importlib

from lcp.tracking.settings import (
    ENV_INVOCATION_ID,
    ENV_PARENT_RUN_IDS,
    ENV_SNAKEMAKE_RULE,
    ENV_SNAKEMAKE_WILDCARDS,
    ENV_TRACKING_URI,
    resolve_target,
    snakemake_env_prefix,
)

__all__ = [
    "ENV_INVOCATION_ID",
    "ENV_PARENT_RUN_IDS",
    "ENV_SNAKEMAKE_RULE",
    "ENV_SNAKEMAKE_WILDCARDS",
    "ENV_TRACKING_URI",
    "LCPMlflowLoggerHook",
    "add_tracking",
    "close_invocation",
    "log_evaluation",
    "log_files",
    "open_invocation",
    "resolve_target",
    "snakemake_env_prefix",
]


# Loaded when first asked for: the hook imports mmcv, and the workflow's DAG build needs only the
# settings above (api and invocation added about 40 ms to every snakemake start).
_LAZY = {
    "LCPMlflowLoggerHook": "lcp.tracking.hook",
    "add_tracking": "lcp.tracking.api",
    "log_evaluation": "lcp.tracking.api",
    "log_files": "lcp.tracking.api",
    "close_invocation": "lcp.tracking.invocation",
    "open_invocation": "lcp.tracking.invocation",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lcp.tracking' has no attribute {name!r}")
