"""mmdet's train_detector (mmdet/apis/train.py, 2.28.2), with the model wrapped for several
processes by lcp.apis.distributed instead of mmdet's build_ddp.

mmdet's build_ddp accepts CUDA devices only and uses mmcv's MMDistributedDataParallel,
whose train_step predates PyTorch 2 (see lcp/apis/distributed.py); everything else -
data loaders, optimizer, runner, hooks, fp16 (Fp16OptimizerHook from the config's `fp16`),
evaluation, resume - is mmdet's own code path, step for step, but for `load_from`, which
the caller loads. Two hooks are added to every run: lcp.hooks.RandomStateHook, which saves the
random state with each checkpoint and restores it on resume, so that a resumed run ends
bit-identical to an uninterrupted one, and lcp.hooks.DivergenceHook, which stops a training
whose weights became nan or inf instead of saving them and going on.

Evaluation during training keeps the best checkpoint (mmcv's save_best; `auto` unless the
config's `evaluation.save_best` says otherwise, `+evaluation.save_best=None` turns it off),
beside the last `checkpoint_config.max_keep_ckpts` epoch checkpoints (default_runtime.py),
and a resumed run goes on replacing the same best file (lcp.apis.resume.restore_best_record).
An epoch is evaluated before its checkpoint is saved (EVAL_PRIORITY). Checkpoints are written
whole or not at all, and the best one is replaced only once its successor is saved
(lcp.apis.checkpoint_saving). With mmdet's EMA hooks, a resume restores their averaged weights
too (ema_buffers_registered) and the evaluation is of the weights saved (eval_priority).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import SimpleNamespace

from lcp.errors import LCPError

# Evaluate an epoch before mmcv's CheckpointHook (NORMAL) saves it: mmdet's LOW saved first,
# so a run killed while evaluating resumed after that epoch and never evaluated it (its val
# AP and a best checkpoint lost for good). Now such a run resumes before the epoch and
# trains it again (exactly: RandomStateHook), and epoch_N.pth holds its own evaluation.
EVAL_PRIORITY = "ABOVE_NORMAL"


def check_distributed_cfg(cfg, model, device: str, validate: bool, source: str) -> None:
    """LCPError for settings a distributed run cannot train with, naming the config."""
    if hasattr(model, "set_train_mode") and not cfg.get("find_unused_parameters", False):
        raise LCPError(
            f"{source}: distributed LCP training needs find_unused_parameters = True (each training mode "
            "freezes part of the model, and DDP must skip the parameters a step does not use)"
        )
    if device == "cpu" and validate and cfg.get("evaluation", {}).get("gpu_collect", False):
        raise LCPError(
            f"{source}: evaluation.gpu_collect=True gathers the results on a GPU, which a distributed "
            "training on CPUs does not have; set it to False (gathers through the work dir)"
        )


def train_detector(
    model,
    datasets,
    cfg,
    distributed: bool = False,
    validate: bool = False,
    timestamp: str | None = None,
    meta: dict | None = None,
    source: str | None = None,
) -> None:
    """mmdet's train_detector, made resumable (see lcp/commands/train.py); `source` names the
    config in errors (default: cfg.filename)."""
    from mmcv.runner import (
        DistSamplerSeedHook,
        EpochBasedRunner,
        Fp16OptimizerHook,
        OptimizerHook,
        build_optimizer,
        build_runner,
    )
    from mmdet.apis.train import auto_scale_lr
    from mmdet.core import DistEvalHook, EvalHook
    from mmdet.datasets import build_dataloader, build_dataset, replace_ImageToTensor
    from mmdet.utils import build_dp, compat_cfg, get_root_logger

    from lcp.apis.checkpoint_saving import best_kept_until_replaced, save_checkpoints_atomically
    from lcp.apis.config import built_from_settings, check_custom_keys, schedule_warnings
    from lcp.apis.distributed import wrap_distributed
    from lcp.apis.resume import restore_best_record
    from lcp.apis.streams import annotation_loading_unprinted
    from lcp.hooks.divergence import DivergenceHook
    from lcp.hooks.gradients import ReleaseGradientsHook, zeroes_every_step
    from lcp.hooks.random_state import RandomStateHook

    source = source or cfg.filename
    with built_from_settings(source, "data loader"):  # mmdet asserts on a batch size given twice
        cfg = compat_cfg(cfg)
    logger = get_root_logger(log_level=cfg.log_level)
    runner_type = cfg.runner["type"] if "runner" in cfg else "EpochBasedRunner"
    train_loader_cfg = dict(
        samples_per_gpu=2,
        workers_per_gpu=2,
        num_gpus=len(cfg.gpu_ids),
        dist=distributed,
        seed=cfg.seed,
        runner_type=runner_type,
        persistent_workers=False,
    )
    train_loader_cfg.update(cfg.data.get("train_dataloader", {}))
    data_loaders = [build_dataloader(dataset, **train_loader_cfg) for dataset in datasets]

    if distributed:
        model = wrap_distributed(model, cfg.device, find_unused_parameters=cfg.get("find_unused_parameters", False))
    else:
        model = build_dp(model, cfg.device, device_ids=cfg.gpu_ids)

    auto_scale_lr(cfg, distributed, logger)
    with built_from_settings(source, "optimizer"):
        optimizer = build_optimizer(model, cfg.optimizer)
    for warning in [
        *check_custom_keys(model, cfg.optimizer, source),
        *schedule_warnings(cfg, source, len(data_loaders[0]), validate),
    ]:
        logger.warning(warning)
    with built_from_settings(source, "runner"):
        runner = build_runner(
            cfg.runner,
            default_args=dict(model=model, optimizer=optimizer, work_dir=cfg.work_dir, logger=logger, meta=meta),
        )
    runner.timestamp = timestamp  # .log and .log.json get the same name
    save_checkpoints_atomically(runner)

    fp16_cfg = cfg.get("fp16", None)
    if fp16_cfg is not None:
        optimizer_config = Fp16OptimizerHook(**cfg.optimizer_config, **fp16_cfg, distributed=distributed)
    elif distributed and "type" not in cfg.optimizer_config:
        optimizer_config = OptimizerHook(**cfg.optimizer_config)
    else:
        optimizer_config = cfg.optimizer_config
    with built_from_settings(source, "training hooks"):
        runner.register_training_hooks(
            cfg.lr_config,
            optimizer_config,
            cfg.checkpoint_config,
            cfg.log_config,
            cfg.get("momentum_config", None),
            custom_hooks_config=cfg.get("custom_hooks", None),
        )
    if distributed and isinstance(runner, EpochBasedRunner):
        runner.register_hook(DistSamplerSeedHook())
    if not any(isinstance(hook, RandomStateHook) for hook in runner.hooks):
        # before everything else: it restores the state before the epoch's hooks and loader
        # draw, and captures it after the epoch before CheckpointHook saves runner.meta
        runner.register_hook(RandomStateHook(), priority="HIGHEST")
    if not any(isinstance(hook, DivergenceHook) for hook in runner.hooks):
        # after OptimizerHook's step (ABOVE_NORMAL), so it sees the weights that step left
        runner.register_hook(DivergenceHook(), priority="NORMAL")
    graphs = getattr(getattr(model, "module", model), "front_graphs", None)
    optimizer_hook = next((hook for hook in runner.hooks if isinstance(hook, OptimizerHook)), None)
    if graphs is not None and graphs.enabled and zeroes_every_step(optimizer_hook):
        # last before the forward, so LCPDetector's front graphs find no gradient kept from the last step
        runner.register_hook(ReleaseGradientsHook(), priority="LOWEST")

    if validate:
        val_loader_cfg = dict(
            samples_per_gpu=1, workers_per_gpu=2, dist=distributed, shuffle=False, persistent_workers=False
        )
        val_loader_cfg.update(cfg.data.get("val_dataloader", {}))
        if val_loader_cfg["samples_per_gpu"] > 1:
            cfg.data.val.pipeline = replace_ImageToTensor(cfg.data.val.pipeline)
        with annotation_loading_unprinted(), built_from_settings(source, "validation data set"):
            val_dataset = build_dataset(cfg.data.val, dict(test_mode=True))
        val_loader = build_dataloader(val_dataset, **val_loader_cfg)
        eval_cfg = cfg.get("evaluation", {})  # by epoch: lcp train refuses iteration-based runners
        # keep the best checkpoint beside the last checkpoint_config.max_keep_ckpts ones
        eval_cfg.setdefault("save_best", "auto")
        eval_hook = best_kept_until_replaced(DistEvalHook if distributed else EvalHook)
        runner.register_hook(eval_hook(val_loader, **eval_cfg), priority=eval_priority(runner))

    if cfg.resume_from:
        ema_buffers_registered(runner)
        runner.resume(cfg.resume_from)
        if validate and eval_cfg.get("save_best"):
            restore_best_record(runner)
    # cfg.load_from: the caller has loaded it into the model (lcp.apis.training_run, with the
    # LCP-only keys reported); mmdet's runner.load_checkpoint here would load it again, silently
    with epoch_pauses_skipped(not distributed):
        run_training(runner, data_loaders, cfg.workflow)


def eval_priority(runner) -> int:
    """EVAL_PRIORITY, or that of mmdet's EMA hooks when later: they swap the averaged weights in at
    the epoch's end (priority 49 in mmdet's configs, before CheckpointHook saves them), and the
    evaluation (registered after them: of equal priority, it runs after) must see what is saved.
    At ABOVE_NORMAL it evaluated the raw weights: val AP and the best checkpoint were not those of
    the checkpoint `lcp test` evaluates."""
    from mmcv.runner import get_priority
    from mmdet.core.hook.ema import BaseEMAHook

    swaps = [hook.priority for hook in runner.hooks if isinstance(hook, BaseEMAHook)]
    return max([get_priority(EVAL_PRIORITY), *swaps])


def ema_buffers_registered(runner) -> None:
    """Register the ema_* buffers of mmdet's EMA hooks (ExpMomentumEMAHook, ...) before a resume
    loads the checkpoint. The hooks register them in before_run, after the resume: the checkpoint's
    raw weights (its ema_* entries, as the hook swaps them for the epoch's end) were dropped as
    unexpected keys and the resumed run went on from the averaged weights, not bit-identical to
    an uninterrupted run. Their before_run is then done; it would overwrite the loaded buffers."""
    from mmdet.core.hook.ema import BaseEMAHook

    for hook in runner.hooks:
        if isinstance(hook, BaseEMAHook) and hook.checkpoint is None:
            hook.before_run(runner)
            hook.before_run = lambda runner: None


def run_training(runner, data_loaders, workflow) -> None:
    """runner.run; if it raises, each hook with an after_failed_run(runner, exc) hears of it first
    (mmcv's runner has no such point): the MLflow hook ends its run saying why. A hook that fails
    there is a warning: the training's own error (or Ctrl-C, SIGTERM) is what the command reports."""
    try:
        runner.run(data_loaders, workflow)
    except BaseException as exc:
        for hook in runner.hooks:
            if callable(after_failed_run := getattr(hook, "after_failed_run", None)):
                try:
                    after_failed_run(runner, exc)
                except Exception as error:  # noqa: BLE001  it would replace the error that stopped the training
                    name = type(hook).__name__
                    runner.logger.warning("%s: could not record how the training stopped: %s", name, error)
        raise


@contextlib.contextmanager
def epoch_pauses_skipped(skip: bool) -> Iterator[None]:
    """mmcv's EpochBasedRunner sleeps 2 s before every epoch (its comment: against a deadlock at
    the epoch transition of several processes) and 1 s after the run; with `skip` (a run in one
    process) it does not: the demo's 31 epochs slept 69 s of its 3 min 40 s."""
    from mmcv.runner import epoch_based_runner

    if not skip:
        yield
        return
    clock = epoch_based_runner.time
    epoch_based_runner.time = SimpleNamespace(sleep=lambda seconds: None)  # the module's only use of time
    try:
        yield
    finally:
        epoch_based_runner.time = clock
