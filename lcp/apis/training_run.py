"""One training run from an mmdet config (what `lcp train` does, as a library call): every input
checked before any process starts, then seeds, the work dir's log and config copy, the model
with its init or resume checkpoint, and lcp.apis.train.train_detector.

lcp/commands/train.py documents how this differs from mmdet's tools/train.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lcp.apis.streams import annotation_loading_unprinted, stdout_to_stderr
from lcp.apis.tracking_request import TrackingRequest
from lcp.errors import LCPError


@dataclass(frozen=True)
class TrainingRequest:
    """What to train and how; each field is the `lcp train` option of the same name."""

    config: str
    work_dir: str | None = None
    resume_from: str | None = None
    auto_resume: bool = False
    load_from: str | None = None
    validate: bool = True
    cfg_options: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    auto_scale_lr: bool = False
    deterministic: bool = False
    fp16: bool = False
    launcher: str = "none"  # none, pytorch (torchrun) or slurm (srun)
    local_rank: int = 0
    gpu_id: int = 0
    tracking: TrackingRequest | None = None


@dataclass(frozen=True)
class TrainedRun:
    work_dir: Path
    checkpoint: Path | None  # the newest complete epoch_N.pth / iter_N.pth
    seed: int


def checked_training_config(request: TrainingRequest):
    """The run's config and work dir, with every input checked: what the request, the config,
    its data and the work dir get wrong fails here, before any training process."""
    from lcp.apis.config import load_config
    from lcp.datasets.config_checks import check_dataset_cfg
    from lcp.models.checkpoint import saved_by_torch, what_it_holds
    from lcp.models.pretrained import prepare_pretrained_init

    cfg = load_config(request.config, dict(request.cfg_options))
    _check_schedule(cfg, request.config)
    if request.seed is None and cfg.get("seed") is None:
        raise LCPError(
            f"{request.config}: seed = None draws a random seed, which a resumed run would draw anew "
            "(another pairing from then on); give one: --seed N or --cfg-options seed=N"
        )
    if request.auto_scale_lr:
        _enable_auto_scale_lr(cfg, request.config)
    if request.load_from:
        cfg.load_from = request.load_from
    for key in ("load_from", "resume_from"):  # None in the configs, so --cfg-options may give any kind
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            raise LCPError(f"{request.config}: {key} = {cfg[key]!r} is not the path of a checkpoint")
    if request.tracking is not None:
        from lcp.tracking import add_tracking

        add_tracking(
            cfg,
            **request.tracking.run_names(cfg),
            tracking_uri=request.tracking.tracking_uri,
            log_checkpoint=request.tracking.log_checkpoint,
            config_file=request.config,
        )
    check_dataset_cfg(cfg.data.train, for_training=True)
    if request.validate:
        check_dataset_cfg(cfg.data.val, for_evaluation=True)
    work_dir = _work_dir(request, cfg)
    cfg.work_dir = str(work_dir)
    cfg.resume_from = _resume_checkpoint(request, cfg, work_dir)
    cfg.auto_resume = False  # resolved above; mmdet's own lookup would pick truncated files
    if cfg.resume_from is None and cfg.get("load_from") and not Path(cfg.load_from).is_file():
        raise LCPError(f"{cfg.load_from}: initial checkpoint (load_from) does not exist")
    # checked before the work dir is made, so that a refused run leaves none behind
    key = "resume_from" if cfg.resume_from else "load_from"
    if cfg.get(key) and not saved_by_torch(cfg[key]):
        raise LCPError(f"{cfg[key]}: not a PyTorch checkpoint ({key}: {what_it_holds(cfg[key])})")
    if key == "load_from" and cfg.get("load_from"):
        _check_initial_classes(cfg, request.config)
    prepare_pretrained_init(cfg, request.config)
    return cfg, work_dir


def _check_initial_classes(cfg, config: str) -> None:
    """load_from matches heads by index: a checkpoint trained for the same classes in another
    order would start each class from another class's weights, with no key missing to say so
    (other classes, or another number of them, are a fine-tuning like any other)."""
    from lcp.apis.inference import checkpoint_classes

    trained, wanted = checkpoint_classes(cfg.load_from), cfg.get("classes")
    if trained and wanted and tuple(trained) != tuple(wanted) and sorted(trained) == sorted(wanted):
        raise LCPError(
            f"{cfg.load_from}: trained for classes {list(trained)}, which {config} lists in another order, "
            f"{list(wanted)}, so each class would start from another's weights; list the classes in the "
            "checkpoint's order (the annotation files' category ids ascending in it)"
        )


@stdout_to_stderr
def train_from_config(request: TrainingRequest) -> TrainedRun:
    """Train in this process (one rank of a distributed run when request.launcher is not none).
    Nothing goes to stdout: what pycocotools and mmcv print there goes to stderr, beside the log."""
    import torch
    import torch.distributed as dist
    from mmdet import __version__ as mmdet_version
    from mmdet.apis import init_random_seed, set_random_seed
    from mmdet.datasets import build_dataset
    from mmdet.utils import setup_multi_processes

    from lcp.apis.compat import accept_gpu_ids_in_mmcv_scatter, progress_lines_in_mmcv_progress_bar
    from lcp.apis.config import build_model, built_from_settings, config_files
    from lcp.apis.distributed import init_distributed
    from lcp.apis.environment import run_environment
    from lcp.apis.options import select_device
    from lcp.apis.resume import find_resume_checkpoint
    from lcp.apis.train import check_distributed_cfg, train_detector
    from lcp.apis.training_lock import training_lock
    from lcp.io import check_outside_sources, write_json, write_text
    from lcp.models.checkpoint import is_class_layer, load_lcp_checkpoint

    cfg, work_dir = checked_training_config(request)
    if request.auto_resume and _finished_in(work_dir, cfg):
        # the same run (checked_training_config compared the request) finished and was published
        finished = Path(cfg.resume_from).name
        print(f"lcp train: {work_dir}: its run finished ({finished}); nothing to train", file=sys.stderr)
        return TrainedRun(work_dir, Path(cfg.resume_from), request.seed if request.seed is not None else cfg.seed)
    config_copy = work_dir / Path(request.config).name
    config_sources = config_files(request.config)
    check_outside_sources(config_copy, config_sources)  # before the work dir gets anything
    accept_gpu_ids_in_mmcv_scatter()
    progress_lines_in_mmcv_progress_bar()
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(request.local_rank)
    setup_multi_processes(cfg)

    cfg.gpu_ids = [request.gpu_id]
    distributed = request.launcher != "none"
    rank = 0
    if distributed:
        dist_env = init_distributed(request.launcher, backend=cfg.get("dist_params", {}).get("backend"))
        cfg.gpu_ids = list(range(dist_env.world_size))
        cfg.device, rank = dist_env.device, dist_env.rank
    else:
        cfg.device = select_device(request.gpu_id)
    if request.fp16 and cfg.get("fp16") is None:
        cfg.fp16 = dict(loss_scale="dynamic")
    _check_fp16_loss_scale(cfg, request.config)
    if cfg.get("fp16") is not None and cfg.device != "cuda":
        raise LCPError(
            f"{request.config}: fp16 training runs under CUDA autocast and no GPU is visible; "
            "drop --fp16 (or the config's fp16) to train on the CPU"
        )
    # fixed input sizes (resize to img_scale, pad to 32) make cuDNN's autotuning pay off
    torch.backends.cudnn.benchmark = bool(cfg.get("cudnn_benchmark", False))

    work_dir.mkdir(parents=True, exist_ok=True)
    # A process under a launcher is one rank of a training whose `lcp train --gpus N` holds the lock.
    with training_lock(work_dir) if request.launcher == "none" else contextlib.nullcontext():
        if rank == 0 and not request.resume_from:
            write_json(work_dir / RUN_RECORD, run_record(request, cfg.get("seed")))
        timestamp = time.strftime("%Y%m%d_%H%M%S", time.localtime())
        log_file = work_dir / f"{timestamp}.log"
        logger = _log_to_file(log_file, cfg.log_level, rank)
        env_info = "\n".join(f"{k}: {v}" for k, v in run_environment().items())
        logger.info("Environment info:\n%s", env_info, extra=LOG_FILE_ONLY)
        seed = request.seed if request.seed is not None else cfg.get("seed")
        seed = init_random_seed(seed, device=cfg.device)
        set_random_seed(seed, deterministic=request.deterministic)
        cfg.seed = seed
        logger.info("Set random seed to %d, deterministic: %s", seed, request.deterministic)
        write_text(config_copy, cfg.pretty_text, sources=config_sources)
        logger.info("Config (also in %s):\n%s", config_copy, cfg.pretty_text, extra=LOG_FILE_ONLY)
        if rank == 0:
            logger.info("Environment, config and the model's initialisation: in %s", log_file)

        model = build_model(cfg, request.config, train_cfg=cfg.get("train_cfg"), test_cfg=cfg.get("test_cfg"))
        model.init_weights()
        if distributed:
            check_distributed_cfg(cfg, model, cfg.device, validate=request.validate, source=request.config)

        with annotation_loading_unprinted(), built_from_settings(request.config, "training data set"):
            datasets = [build_dataset(cfg.data.train)]

        if cfg.resume_from:
            # strict: a checkpoint of another architecture is refused before training starts;
            # the runner then restores weights, optimizer state and epoch from it
            load_lcp_checkpoint(model, cfg.resume_from, strict=True)
            logger.info("Resuming from %s", cfg.resume_from)
        elif cfg.get("load_from"):
            missing, unexpected = load_lcp_checkpoint(model, cfg.load_from, strict=False)
            logger.info(
                "Initialised from %s; %d keys missing from it (keep their initialisation): %s; "
                "%d unexpected keys ignored: %s",
                cfg.load_from,
                len(missing),
                ", ".join(missing) or "-",
                len(unexpected),
                ", ".join(unexpected) or "-",
            )
            if any(is_class_layer(key) for key in missing):
                logger.warning(
                    "%s was trained for another number of classes: the box heads' classification layers "
                    "start from their initialisation",
                    cfg.load_from,
                )
        if cfg.checkpoint_config is not None:
            cfg.checkpoint_config.meta = dict(mmdet_version=mmdet_version, CLASSES=datasets[0].CLASSES)
        model.CLASSES = datasets[0].CLASSES

        meta = dict(
            env_info=env_info,
            config=cfg.pretty_text,
            seed=seed,
            exp_name=Path(request.config).name,
            deterministic=request.deterministic,  # no config key holds it; the MLflow param reads it here
        )
        train_detector(
            model,
            datasets,
            cfg,
            distributed=distributed,
            validate=request.validate,
            timestamp=timestamp,
            meta=meta,
            source=request.config,
        )
        if distributed:
            dist.barrier()
            dist.destroy_process_group()
        return TrainedRun(work_dir=work_dir, checkpoint=find_resume_checkpoint(work_dir), seed=seed)


def _work_dir(request: TrainingRequest, cfg) -> Path:
    if request.work_dir:
        return Path(request.work_dir)
    if cfg.get("work_dir"):
        return Path(cfg.work_dir)
    return Path("work_dirs") / Path(request.config).stem


def _resume_checkpoint(request: TrainingRequest, cfg, work_dir: Path) -> str | None:
    from lcp.apis.resume import find_resume_checkpoint, numbered_checkpoints
    from lcp.models.checkpoint import check_resumable

    if request.resume_from:
        if not Path(request.resume_from).is_file():
            raise LCPError(f"{request.resume_from}: checkpoint to resume from does not exist")
        check_resumable(request.resume_from)
        return request.resume_from
    if request.auto_resume:
        found = find_resume_checkpoint(work_dir)
        if found is not None:
            _check_same_run(request, work_dir, cfg.get("seed"))
            return str(found)
    if cfg.get("resume_from"):  # also under --auto-resume when the work dir holds none, as in mmdet's tool
        if not Path(cfg.resume_from).is_file():
            raise LCPError(f"{cfg.resume_from}: checkpoint to resume from (resume_from) does not exist")
        check_resumable(cfg.resume_from)
        return cfg.resume_from
    existing = numbered_checkpoints(work_dir)
    if existing and not request.auto_resume:
        raise LCPError(
            f"{work_dir}: already holds checkpoints (newest {existing[0].name}); pass "
            "--auto-resume to continue that run, or choose another --work-dir"
        )
    return None


RUN_RECORD = "lcp-train-request.json"
# a resumed run may be longer or shorter: the epochs it shares with the first are the same
RUN_LENGTH_OPTIONS = ("runner.max_epochs", "runner.max_iters")


def run_record(request: TrainingRequest, config_seed: int | None = None) -> dict[str, Any]:
    """What decides a training's result: its config files' contents, options and settings
    (not the GPUs, the launcher, the tracking or the run's length), as a work dir records it.
    `seed` is the seed the run trains with: --seed, else the config's (`config_seed`), so that
    `--seed 0` continues a run started without --seed under a config whose seed is 0."""
    import hashlib
    import json

    from lcp.apis.config import config_files

    options = {key: value for key, value in request.cfg_options.items() if key not in RUN_LENGTH_OPTIONS}
    return {
        "config files": [hashlib.sha256(Path(file).read_bytes()).hexdigest() for file in config_files(request.config)],
        "cfg_options": json.loads(json.dumps(options, default=str)),
        "seed": request.seed if request.seed is not None else config_seed,
        "load_from": request.load_from,
        "fp16": request.fp16,
        "deterministic": request.deterministic,
        "auto_scale_lr": request.auto_scale_lr,
    }


def _finished_in(work_dir: Path, cfg) -> bool:
    """Whether the checkpoint --auto-resume found is the end of a run `lcp workdir finish`
    published, at the configured length: a longer run (runner.max_epochs) goes on training."""
    from lcp.apis.resume import CHECKPOINT_NAME, FINISHED_RECORD

    name = CHECKPOINT_NAME.match(Path(cfg.resume_from).name) if cfg.resume_from else None
    epochs = (cfg.get("runner") or {}).get("max_epochs")
    return bool(name) and (work_dir / FINISHED_RECORD).is_file() and int(name.group(1)) == epochs


def _check_same_run(request: TrainingRequest, work_dir: Path, config_seed: int | None = None) -> None:
    """--auto-resume continues the run in `work_dir` only when it was started with the same
    request; a record from an older lcp (none) is not questioned. An older record's seed null
    (no --seed) meant the config's seed, which the config files and options it also records fix."""
    from lcp.io import read_json

    record_file = work_dir / RUN_RECORD
    if not record_file.is_file():
        return
    recorded, wanted = read_json(record_file), run_record(request, config_seed)
    if "seed" in recorded and recorded["seed"] is None:
        recorded["seed"] = config_seed
    changed = [key for key in wanted if recorded.get(key) != wanted[key]]
    if changed:
        raise LCPError(
            f"{work_dir}: holds a run started with another {', '.join(changed)} ({record_file}); "
            "--auto-resume continues only the same run: give another --work-dir, remove this one to start "
            "over, or --resume-from one of its checkpoints to go on with other settings on purpose"
        )


# extra= of a record that only the run's log file keeps (lcp.apis.training_run._log_to_file)
LOG_FILE_ONLY = {"lcp_log_file_only": True}


class _LogFileOnly(logging.Filter):
    """Keeps off the console (the workflow's job log, which Snakemake shows on failure) the
    records only the run's log file needs: the environment and config (LOG_FILE_ONLY), mmcv's
    module initialisation lines and the runner's hook table. Together about 90% of a job log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "lcp_log_file_only", False):
            return False
        message = str(record.msg)
        return not (
            message.startswith("Hooks will be executed in the following order")
            or (record.name == "mmcv" and message.startswith("initialize "))
        )


def _log_to_file(log_file: Path, log_level: str, rank: int = 0) -> logging.Logger:
    """mmdet's root logger, writing to this run's log file (also when a process trains twice).

    mmcv's logger writes there too: mmcv dumps every parameter's initialisation into a log
    file it finds, and onto the console when it finds none (4 lines per parameter). The console
    gets what _LogFileOnly lets through.

    Only rank 0 writes the file: the other ranks of a distributed run would open the same
    timestamped name and truncate it.
    """
    from mmcv.utils import get_logger
    from mmdet.utils import get_root_logger

    logger = get_root_logger(log_file=str(log_file), log_level=log_level)
    if rank != 0:
        return logger
    mmcv_logger = get_logger("mmcv")
    for each in (logger, mmcv_logger):
        for handler in list(each.handlers):
            if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) != log_file.resolve():
                each.removeHandler(handler)
                if each is logger:
                    handler.close()
    file_handler = next((h for h in logger.handlers if isinstance(h, logging.FileHandler)), None)
    if file_handler is None:
        file_handler = logging.FileHandler(log_file, "w")
        file_handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
        logger.addHandler(file_handler)
    if file_handler not in mmcv_logger.handlers:
        mmcv_logger.addHandler(file_handler)
    for each in (logger, mmcv_logger):
        for handler in each.handlers:
            if not isinstance(handler, logging.FileHandler) and not any(
                isinstance(f, _LogFileOnly) for f in handler.filters
            ):
                handler.addFilter(_LogFileOnly())
    return logger


def _check_schedule(cfg, source: str) -> None:
    """Refuse a runner that would train nothing: mmcv's runners run 0 epochs (or iterations)
    without complaint and the command would exit 0 with no trained model; an LCP mode plan
    that does not cover the run's epochs; and lcp.apis.config.check_training_settings."""
    from lcp.apis.config import check_mode_plan_length, check_training_settings

    runner = cfg.get("runner") or {}
    if runner.get("type", "EpochBasedRunner") != "EpochBasedRunner":
        # LCP's mode plan is per epoch, and RandomStateHook restores an epoch's random state;
        # mmcv's IterBasedRunner also retrains one iteration on resume and resumes on CUDA only.
        raise LCPError(
            f"{source}: runner type {runner['type']}: lcp train runs epoch-based runners (modes and exact "
            "resume are per epoch); use runner = dict(type='EpochBasedRunner', max_epochs=N)"
        )
    lengths = {key: runner[key] for key in ("max_epochs", "max_iters") if runner.get(key) is not None}
    if not lengths and cfg.get("total_epochs") is not None:  # mmdet's older name for max_epochs
        lengths = {"total_epochs": cfg.total_epochs}
    for key, value in lengths.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            name = key if key == "total_epochs" else f"runner.{key}"
            raise LCPError(f"{source}: {name}={value!r} trains nothing; give a whole number of 1 or more")
    check_mode_plan_length(cfg, source)
    check_training_settings(cfg, source)


def _enable_auto_scale_lr(cfg, source: str) -> None:
    settings = cfg.get("auto_scale_lr")
    if not settings or not settings.get("base_batch_size"):
        raise LCPError(
            f"{source}: --auto-scale-lr needs auto_scale_lr.base_batch_size, the total batch the "
            "config's lr is for; add it, e.g. --cfg-options +auto_scale_lr.base_batch_size=16"
        )
    settings.enable = True


# Below this fixed fp16 loss scale the catch-up learner's KL gradient underflows in half precision.
MIN_FIXED_LOSS_SCALE = 2**14


def _check_fp16_loss_scale(cfg, source: str) -> None:
    """LCPError for an LCP model trained in fp16 with a small fixed loss scale: the KL over a
    whole-map softmax of ~10^7 entries has gradient entries of ~1e-7, which a scale of 512
    leaves below half precision's normal range (measured at the published size with weight 1:
    35% of them zeroed, the catch-up learner's weight gradient 109% off), without a word."""
    from lcp.apis.config import is_lcp_model

    loss_scale = (cfg.get("fp16") or {}).get("loss_scale", "dynamic")
    if is_lcp_model(cfg) and isinstance(loss_scale, int | float) and loss_scale < MIN_FIXED_LOSS_SCALE:
        raise LCPError(
            f"{source}: fp16.loss_scale={loss_scale:g} is a fixed scale under which the catch-up learner's KL "
            f"gradient underflows in half precision (its entries are ~1e-7); use loss_scale='dynamic' (what "
            f"--fp16 sets) or a fixed scale of at least {MIN_FIXED_LOSS_SCALE}"
        )
