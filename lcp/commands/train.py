"""`lcp train`: train a detector from an mmdet config (mmdet's tools/train.py, made resumable).

Differences from mmdet's tool, and why:
- --auto-resume picks the newest *complete* checkpoint of the work dir (a run killed while
  saving leaves a truncated file); without a resume flag, a work dir that already holds
  checkpoints is refused instead of being silently overwritten. A resumed run ends
  bit-identical to an uninterrupted one on the CPU: every checkpoint carries the random
  state, which lcp.hooks.RandomStateHook restores (lcp.apis.train adds it to every run).
- The init checkpoint (`load_from`) is loaded non-strictly by lcp.models.checkpoint, which
  names every missing key (for LCP: the crux learner, catch-up learner and fusion that a
  plain Cascade R-CNN checkpoint lacks) and rejects checkpoints of another architecture.
- The seed defaults to the config's `seed` (0) instead of a random one, and seeds the
  detection-favoured pairing too.
- Runs on a CPU when no GPU is visible.
- Several processes (--launcher pytorch under torchrun, --launcher slurm under srun, one
  process per GPU) train through lcp.apis.distributed: NCCL on GPUs, gloo on CPUs.
  `--gpus N` starts them itself: srun's tasks inside a SLURM job of N tasks, torchrun's
  processes on this machine otherwise.
- --fp16 trains with mmdet's mixed precision (the config's `fp16`, else a dynamic loss
  scale); `cudnn_benchmark = True` in a config turns on cuDNN autotuning.
- --auto-scale-lr is mmdet's: the config's `auto_scale_lr.base_batch_size` is the total
  batch its lr is for, and the lr is scaled linearly to GPUs x samples_per_gpu (the log
  says from what to what). A config without that key is refused instead of warned about.
- Checkpoints: the last `checkpoint_config.max_keep_ckpts` (3, default_runtime.py) plus,
  with evaluation, the best one (best_bbox_mAP_epoch_N.pth); see lcp.apis.train.
- Evaluation progress is written as whole lines when stdout is no terminal (a job log),
  not as a bar redrawn with carriage returns.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from lcp.apis.options import add_cfg_options, parse_cfg_options
from lcp.commands.tracking_flags import add_tracking_arguments, tracking_names, tracking_wanted
from lcp.errors import LCPError

HELP = "train a detector (plain Cascade R-CNN or LCP) from an mmdet config; resumable"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="mmdet config file, e.g. config/mmdet/lcp_r50_urpc.py")
    parser.add_argument(
        "--work-dir", help="where checkpoints and logs go (default: the config's work_dir, else work_dirs/CONFIG_NAME)"
    )
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume-from", metavar="CKPT", help="resume model, optimizer and epoch from CKPT")
    resume.add_argument(
        "--auto-resume", action="store_true", help="resume from the newest complete checkpoint in the work dir, if any"
    )
    parser.add_argument(
        "--load-from", metavar="CKPT", help="initial weights, loaded non-strictly (overrides the config's load_from)"
    )
    parser.add_argument("--no-validate", action="store_true", help="skip evaluation during training")
    add_cfg_options(parser)
    parser.add_argument("--seed", type=int, help="random seed (default: the config's seed)")
    parser.add_argument(
        "--auto-scale-lr",
        action="store_true",
        help="scale the lr linearly from the config's auto_scale_lr.base_batch_size to the "
        "actual total batch (GPUs x samples_per_gpu), as mmdet's --auto-scale-lr",
    )
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic cuDNN settings (also turns the config's cudnn_benchmark off)",
    )
    parser.add_argument(
        "--fp16",
        action="store_true",
        help="mixed precision (mmdet's fp16; the config's `fp16` settings, else a dynamic loss scale); needs a GPU",
    )
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch", "slurm"],
        default="none",
        help="distributed launcher: pytorch (torchrun) or slurm (srun, one task per GPU); default: none, one process",
    )
    parser.add_argument("--local-rank", "--local_rank", dest="local_rank", type=int, default=0, help=argparse.SUPPRESS)
    gpus = parser.add_mutually_exclusive_group()
    gpus.add_argument(
        "--gpus",
        type=int,
        help="train on N GPUs, one process each (started with srun inside a "
        "SLURM job of N tasks, else with torchrun on this machine)",
    )
    gpus.add_argument("--gpu-id", type=int, default=0, help="GPU to use without a launcher (default 0)")
    add_tracking_arguments(parser, default_step="train")


def _work_dir(args: argparse.Namespace, cfg) -> Path:
    if args.work_dir:
        return Path(args.work_dir)
    if cfg.get("work_dir"):
        return Path(cfg.work_dir)
    return Path("work_dirs") / Path(args.config).stem


def _resume_checkpoint(args: argparse.Namespace, cfg, work_dir: Path) -> str | None:
    from lcp.apis.resume import find_resume_checkpoint, numbered_checkpoints

    if args.resume_from:
        if not Path(args.resume_from).is_file():
            raise LCPError(f"{args.resume_from}: checkpoint to resume from does not exist")
        return args.resume_from
    if args.auto_resume:
        found = find_resume_checkpoint(work_dir)
        return str(found) if found else None
    if cfg.get("resume_from"):
        return cfg.resume_from
    existing = numbered_checkpoints(work_dir)
    if existing:
        raise LCPError(
            f"{work_dir}: already holds checkpoints (newest {existing[0].name}); pass "
            "--auto-resume to continue that run, or choose another --work-dir"
        )
    return None


def _set_pairing_seed(dataset_cfg, seed: int) -> None:
    """Give every DFPairedDataset without an explicit seed the run's seed."""
    if isinstance(dataset_cfg, (list, tuple)):
        for item in dataset_cfg:
            _set_pairing_seed(item, seed)
        return
    if dataset_cfg.get("type") == "DFPairedDataset" and dataset_cfg.get("seed") is None:
        dataset_cfg["seed"] = seed
    for key in ("dataset", "datasets"):
        if key in dataset_cfg:
            _set_pairing_seed(dataset_cfg[key], seed)


def _log_to_file(log_file: Path, log_level: str, rank: int = 0) -> logging.Logger:
    """mmdet's root logger, writing to this run's log file (also when a process trains twice).

    Only rank 0 writes the file: the other ranks of a distributed run would open the same
    timestamped name and truncate it.
    """
    from mmdet.utils import get_root_logger

    logger = get_root_logger(log_file=str(log_file), log_level=log_level)
    if rank != 0:
        return logger
    for handler in list(logger.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) != log_file.resolve():
            logger.removeHandler(handler)
            handler.close()
    if not any(isinstance(h, logging.FileHandler) for h in logger.handlers):
        handler = logging.FileHandler(log_file, "w")
        handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
        logger.addHandler(handler)
    return logger


def _check_schedule(cfg, source: str) -> None:
    """Refuse a runner that would train nothing: mmcv's runners run 0 epochs (or iterations)
    without complaint and the command would exit 0 with no trained model."""
    runner = cfg.get("runner") or {}
    lengths = {key: runner[key] for key in ("max_epochs", "max_iters") if runner.get(key) is not None}
    if not lengths and cfg.get("total_epochs") is not None:  # mmdet's older name for max_epochs
        lengths = {"total_epochs": cfg.total_epochs}
    for key, value in lengths.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            name = key if key == "total_epochs" else f"runner.{key}"
            raise LCPError(f"{source}: {name}={value!r} trains nothing; give a whole number of 1 or more")


def _enable_auto_scale_lr(cfg, source: str) -> None:
    settings = cfg.get("auto_scale_lr")
    if not settings or not settings.get("base_batch_size"):
        raise LCPError(
            f"{source}: --auto-scale-lr needs auto_scale_lr.base_batch_size, the total batch the "
            "config's lr is for; add it, e.g. --cfg-options +auto_scale_lr.base_batch_size=16"
        )
    settings.enable = True


def _checked_config(args: argparse.Namespace):
    """The run's config and work dir, with every input checked: what the command line, the
    config, its data and the work dir get wrong fails here, before any training process."""
    from lcp.apis.config import load_config
    from lcp.datasets.config_checks import check_dataset_cfg

    cfg = load_config(args.config, parse_cfg_options(args.cfg_options))
    _check_schedule(cfg, args.config)
    if args.auto_scale_lr:
        _enable_auto_scale_lr(cfg, args.config)
    if args.load_from:
        cfg.load_from = args.load_from
    if tracking_wanted(args):
        from lcp.tracking import add_tracking

        add_tracking(
            cfg,
            **tracking_names(args, cfg),
            tracking_uri=args.tracking_uri,
            log_checkpoint=args.log_checkpoint,
            config_file=args.config,
        )
    check_dataset_cfg(cfg.data.train, for_training=True)
    if not args.no_validate:
        check_dataset_cfg(cfg.data.val)
    work_dir = _work_dir(args, cfg)
    cfg.work_dir = str(work_dir)
    cfg.resume_from = _resume_checkpoint(args, cfg, work_dir)
    cfg.auto_resume = False  # resolved above; mmdet's own lookup would pick truncated files
    if cfg.resume_from is None and cfg.get("load_from") and not Path(cfg.load_from).is_file():
        raise LCPError(f"{cfg.load_from}: initial checkpoint (load_from) does not exist")
    from lcp.models.pretrained import prepare_pretrained_init

    prepare_pretrained_init(cfg, args.config)
    return cfg, work_dir


def _train_on_several_gpus(args: argparse.Namespace) -> int:
    from lcp.apis.distributed import process_launch_command

    _checked_config(args)  # once here, instead of in every process under the launcher's error report
    command = process_launch_command(args.gpus, args._argv)
    print(f"lcp train: {args.gpus} processes: {' '.join(command)}", file=sys.stderr, flush=True)
    return subprocess.run(command).returncode


def main(args: argparse.Namespace) -> int:
    if args.gpus is not None and args.gpus < 1:
        raise LCPError(f"--gpus {args.gpus}: give 1 or more (no GPU: leave --gpus out)")
    if args.gpus is not None and args.gpus > 1 and args.launcher == "none":
        return _train_on_several_gpus(args)

    import torch
    import torch.distributed as dist
    from mmdet import __version__ as mmdet_version
    from mmdet.apis import init_random_seed, set_random_seed
    from mmdet.datasets import build_dataset
    from mmdet.models import build_detector
    from mmdet.utils import setup_multi_processes

    from lcp.apis.compat import (
        accept_gpu_ids_in_mmcv_scatter,
        progress_lines_in_mmcv_progress_bar,
    )
    from lcp.apis.distributed import init_distributed
    from lcp.apis.environment import run_environment
    from lcp.apis.options import select_device
    from lcp.apis.train import check_distributed_cfg, train_detector
    from lcp.io import write_text
    from lcp.models.checkpoint import load_lcp_checkpoint

    cfg, work_dir = _checked_config(args)
    accept_gpu_ids_in_mmcv_scatter()
    progress_lines_in_mmcv_progress_bar()
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    setup_multi_processes(cfg)

    cfg.gpu_ids = [args.gpu_id]
    distributed = args.launcher != "none"
    rank = 0
    if distributed:
        dist_env = init_distributed(args.launcher, backend=cfg.get("dist_params", {}).get("backend"))
        cfg.gpu_ids = list(range(dist_env.world_size))
        cfg.device, rank = dist_env.device, dist_env.rank
    else:
        cfg.device = select_device(args.gpu_id)
    if args.fp16 and cfg.get("fp16") is None:
        cfg.fp16 = dict(loss_scale="dynamic")
    if cfg.get("fp16") is not None and cfg.device != "cuda":
        raise LCPError(
            f"{args.config}: fp16 training runs under CUDA autocast and no GPU is visible; "
            "drop --fp16 (or the config's fp16) to train on the CPU"
        )
    # fixed input sizes (resize to img_scale, pad to 32) make cuDNN's autotuning pay off
    torch.backends.cudnn.benchmark = bool(cfg.get("cudnn_benchmark", False))

    work_dir.mkdir(parents=True, exist_ok=True)
    timestamp = time.strftime("%Y%m%d_%H%M%S", time.localtime())
    logger = _log_to_file(work_dir / f"{timestamp}.log", cfg.log_level, rank)
    env_info = "\n".join(f"{k}: {v}" for k, v in run_environment().items())
    logger.info("Environment info:\n%s", env_info)
    seed = args.seed if args.seed is not None else cfg.get("seed")
    seed = init_random_seed(seed, device=cfg.device)
    set_random_seed(seed, deterministic=args.deterministic)
    cfg.seed = seed
    _set_pairing_seed(cfg.data.train, seed)
    logger.info("Set random seed to %d, deterministic: %s", seed, args.deterministic)
    write_text(work_dir / Path(args.config).name, cfg.pretty_text)
    logger.info("Config (also in %s):\n%s", work_dir / Path(args.config).name, cfg.pretty_text)

    try:
        model = build_detector(cfg.model, train_cfg=cfg.get("train_cfg"), test_cfg=cfg.get("test_cfg"))
    except KeyError as exc:  # an unregistered type: mmcv's message names it
        raise LCPError(f"{args.config}: {exc.args[0]}") from None
    model.init_weights()
    if distributed:
        check_distributed_cfg(cfg, model, cfg.device, validate=not args.no_validate, source=args.config)

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
        cfg.load_from = None  # loaded; mmdet's train_detector would load it again, silently
    if cfg.checkpoint_config is not None:
        cfg.checkpoint_config.meta = dict(mmdet_version=mmdet_version, CLASSES=datasets[0].CLASSES)
    model.CLASSES = datasets[0].CLASSES

    meta = dict(env_info=env_info, config=cfg.pretty_text, seed=seed, exp_name=Path(args.config).name)
    train_detector(
        model, datasets, cfg, distributed=distributed, validate=not args.no_validate, timestamp=timestamp, meta=meta
    )
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return 0
