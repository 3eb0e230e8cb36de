"""What the train/test commands and the workflow call: add_tracking, log_evaluation, log_files,
start_run, and run_names (the names of a tracked `lcp train` or `lcp test`)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lcp.errors import LCPError
from lcp.tracking import settings

if TYPE_CHECKING:
    from lcp.tracking.run import TrackedRun


def add_tracking(
    cfg,
    *,
    scene: str,
    step: str,
    method: str,
    variant: str | None = None,
    tracking_uri: str | None = None,
    log_checkpoint: bool = False,
    interval: int | None = None,
    num_heatmaps: int = 4,
    config_file: str | None = None,
    register_model: bool | None = None,
) -> dict:
    """Append LCPMlflowLoggerHook to cfg.log_config.hooks; returns the hook's config.

    Call it after the config is final (work dir, seed set); the hook reads the resolved
    config from runner.meta['config'] when training starts. Bad names or a malformed
    LCP_SNAKEMAKE_WILDCARDS / LCP_MLFLOW_PARENT_RUN_IDS / LCP_REGISTER_MODEL raise LCPError here,
    before training. register_model=True uploads the final checkpoint and registers it as a
    version of `lcp-<scene>-<method>`; None leaves it to LCP_REGISTER_MODEL. `interval`: the
    losses of every how many iterations are logged; None: log_config.interval, as for mmcv's
    own logger hooks (every iteration made ~500k metric rows per published training).
    """
    import lcp.tracking.hook  # noqa: F401  registers LCPMlflowLoggerHook

    settings.run_name(scene, step, method, variant)
    settings.check_target(settings.resolve_target(tracking_uri))
    settings.snakemake_wildcards()
    settings.parent_run_ids()
    register_model = settings.register_model_wanted(register_model)
    hook = {
        "type": "LCPMlflowLoggerHook",
        "scene": scene,
        "step": step,
        "method": method,
        "variant": variant,
        "tracking_uri": tracking_uri,
        "log_checkpoint": log_checkpoint,
        **({"interval": interval} if interval is not None else {}),
        "num_heatmaps": num_heatmaps,
        "config_file": config_file,
        "register_model": register_model,
    }
    if cfg.get("log_config") is None:
        cfg.log_config = {"interval": 50, "hooks": []}
    cfg.log_config.setdefault("hooks", [])
    if any(h.get("type") == "MlflowLoggerHook" for h in cfg.log_config.hooks):
        raise LCPError(
            f"{config_file or 'the config'}: log_config.hooks: mmcv's MlflowLoggerHook would record a second "
            "MLflow run beside lcp's (in $MLFLOW_TRACKING_URI, else ./mlflow.db), the same losses again, "
            "unsplit by training mode; drop it (lcp's tracking records them), or train with --no-track"
        )
    cfg.log_config.hooks = [h for h in cfg.log_config.hooks if h.get("type") != "LCPMlflowLoggerHook"] + [hook]
    return hook


def start_run(
    *,
    scene: str,
    step: str,
    method: str,
    work_dir: str | os.PathLike,
    variant: str | None = None,
    tracking_uri: str | None = None,
    source: str = "lcp",
    extra_tags: Mapping[str, Any] | None = None,
):
    """A TrackedRun named `{scene}/{step}/{method}[/{variant}][/seed<N>]` under the invocation's parent."""
    from lcp.tracking.params import run_tags
    from lcp.tracking.run import TrackedRun

    name = settings.run_name(scene, step, method, variant, settings.job_seed_name())
    settings.check_target(settings.resolve_target(tracking_uri))
    tags = run_tags(scene, step, method, variant, source=source, **(extra_tags or {}))
    return TrackedRun(
        experiment=settings.experiment_name(scene),
        run_name=name,
        work_dir=work_dir,
        tags=tags,
        tracking_uri=tracking_uri,
    ).start()


def crux_health_tags(health: Mapping[str, Any] | None) -> dict[str, str | None]:
    """lcp.crux_health ("alive" or "collapsed") and lcp.crux_verdict (the sentence; None, i.e. no
    tag, when alive) of a crux-health record ({"collapsed", "verdict", ...}); {} without one."""
    if not isinstance(health, Mapping) or "collapsed" not in health:
        return {}
    return {
        "lcp.crux_health": "collapsed" if health["collapsed"] else "alive",
        "lcp.crux_verdict": health.get("verdict") or None,
    }


def log_evaluation(
    eval_json: str | os.PathLike | Mapping[str, Any],
    *,
    scene: str,
    method: str,
    step: str = "evaluate",
    variant: str | None = None,
    config=None,
    checkpoint: str | None = None,
    tracking_uri: str | None = None,
    work_dir: str | os.PathLike | None = None,
    artifacts: Sequence[str | os.PathLike] = (),
) -> str | None:
    """Record an evaluation (the json `lcp test --eval-out` writes, or that dict) as one run.

    Metrics test/AP, test/AP50, ..., test/AP/<class> in percent (lcp.tracking.metrics), test/num_images,
    and test/crux_mask_* with the tags lcp.crux_health "alive"/"collapsed" and lcp.crux_verdict for an
    LCP model's "crux_health"; params: the settings of the config (an mmcv Config or a config file;
    lcp.tracking.params.training_params), its data fingerprints, versions and git state, and the
    model's training seed from LCP_SEED, else the checkpoint's meta (also the tag lcp.seed); the
    test annotation file as a dataset input (context evaluation); the checkpoint path as tag
    lcp.checkpoint; IoU thresholds other than COCO's (--eval-options iou_thrs) as param iou_thrs
    and tag lcp.iou_thrs; the eval json, the config and `artifacts` as artifacts. Prints the run's
    name, id and UI page. Returns the run id (None while the tracking server is unreachable: the
    run is then kept for `lcp tracking sync` in work_dir, default the eval json's folder).
    """
    from lcp.io import read_json, write_json, write_text
    from lcp.tracking import params as run_params
    from lcp.tracking.metrics import evaluation_metrics

    if isinstance(eval_json, Mapping):
        metrics, eval_path = dict(eval_json), None
    else:
        eval_path = Path(eval_json)
        metrics = read_json(eval_path)
        if not isinstance(metrics, dict):
            raise LCPError(f"{eval_path}: expected a json object of metrics")
    if not evaluation_metrics(metrics):
        raise LCPError(f"{eval_path or 'metrics'}: no numeric metrics to log (expected e.g. bbox_mAP)")
    thresholds = (metrics.get("eval_options") or {}).get("iou_thrs")
    iou_thrs = ",".join(f"{float(t):g}" for t in thresholds) if isinstance(thresholds, list) and thresholds else None
    if config is not None and not hasattr(config, "_cfg_dict"):
        from lcp.apis.config import load_config

        config = load_config(config)
    work_dir = Path(work_dir) if work_dir else (eval_path.parent if eval_path else Path.cwd())
    # the evaluated model's training seed: the job's (LCP_SEED), else the checkpoint's own record;
    # without one, lcp compare took two seeds' evaluations for one model and showed the newer alone
    seed = settings.job_seed()
    if seed is None and checkpoint and Path(checkpoint).is_file():
        from lcp.models.checkpoint import checkpoint_seed

        with contextlib.suppress(LCPError):  # a record of the run, not worth refusing the evaluation for
            seed = checkpoint_seed(checkpoint)
    run = start_run(
        scene=scene,
        step=step,
        method=method,
        variant=variant,
        work_dir=work_dir,
        tracking_uri=tracking_uri,
        source="lcp test",
        extra_tags={
            "lcp.checkpoint": str(Path(checkpoint).resolve()) if checkpoint else None,
            settings.TAG_IOU_THRS: iou_thrs,
            settings.TAG_SEED: None if seed is None else str(seed),
            **crux_health_tags(metrics.get("crux_health")),
        },
    )
    params: dict[str, Any] = {
        "scene": scene,
        "step": step,
        "method": method,
        **run_params.package_versions(),
        **run_params.git_state(),
    }
    if variant:
        params["variant"] = variant
    if iou_thrs:
        params["iou_thrs"] = iou_thrs
    if seed is not None:
        params["seed"] = seed
    data = (config.get("data") or {}) if config is not None else {}
    if config is not None:
        # the evaluated model's init is its training run's: this config's load_from never reached it
        params.update({k: v for k, v in run_params.training_params(config).items() if k != "init.load_from"})
        params.update(run_params.data_params(data))
        params.update(run_params.degradation_params(run_params.sidecars_of(data, splits=("test",))))
    run.log_params(params)
    run.log_inputs(run_params.dataset_inputs(data, {"test": "evaluation"}))
    run.log_metrics(evaluation_metrics(metrics), step=0)
    with tempfile.TemporaryDirectory(prefix="lcp-eval-") as folder:  # offline runs keep copies of artifacts
        scratch = Path(folder)
        if eval_path is None:
            eval_path = scratch / "eval.json"
            write_json(eval_path, metrics)
        run.log_artifact(eval_path, "evaluation")
        if config is not None:
            write_text(scratch / "config.py", config.pretty_text)
            run.log_artifact(scratch / "config.py", "config")
    for artifact in artifacts:
        run.log_artifact(artifact, "evaluation")
    run.finish("FINISHED")
    print(run.where())
    return run.run_id


def log_files(
    paths: Sequence[str | os.PathLike],
    *,
    scene: str,
    step: str,
    method: str = "all",
    variant: str | None = None,
    artifact_path: str | None = None,
    tracking_uri: str | None = None,
    work_dir: str | os.PathLike | None = None,
) -> TrackedRun:
    """One run `{scene}/{step}/{method}` holding `paths` as artifacts (check reports, report tables,
    plots). Returns the finished TrackedRun (its run_id is None while the server is unreachable,
    and it is `disabled` when MLflow refused the run)."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise LCPError(f"{missing[0]}: file to log does not exist")
    if not paths:
        raise LCPError("log-artifacts: no files given")
    work_dir = Path(work_dir) if work_dir else Path(paths[0]).resolve().parent
    run = start_run(
        scene=scene,
        step=step,
        method=method,
        variant=variant,
        work_dir=work_dir,
        tracking_uri=tracking_uri,
        source="lcp tracking log-artifacts",
    )
    for path in paths:
        run.log_artifact(path, artifact_path)
    run.finish("FINISHED")
    return run


def run_names(
    cfg,
    *,
    step: str,
    scene: str | None = None,
    method: str | None = None,
    variant: str | None = None,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """The scene/step/method/variant of a tracked `lcp train` or `lcp test` of `cfg`: scene defaults to
    the config file's name, method to lcp for an LCPDetector config, else baseline. LCPError now for a
    bad name or store, not after training."""
    from lcp.apis.config import is_lcp_model

    method = method or ("lcp" if is_lcp_model(cfg) else "baseline")
    names = {"scene": scene or Path(cfg.filename or "run").stem, "step": step, "method": method, "variant": variant}
    settings.run_name(**names)
    settings.check_target(settings.resolve_target(tracking_uri))
    return names
