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
- One training per work dir: a second `lcp train` into a work dir a training runs in is
  refused, naming the first (lcp.apis.training_lock).
- Evaluation progress is written as whole lines when stdout is no terminal (a job log),
  not as a bar redrawn with carriage returns.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from lcp.apis.distributed import record_failure
from lcp.apis.options import add_cfg_options, parse_cfg_options
from lcp.apis.training_run import TrainingRequest, checked_training_config, train_from_config
from lcp.commands.tracking_flags import add_tracking_arguments, tracking_request
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
        help="deterministic cuDNN settings (also turns the config's cudnn_benchmark off; no effect on a CPU)",
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


def training_request(args: argparse.Namespace) -> TrainingRequest:
    return TrainingRequest(
        config=args.config,
        work_dir=args.work_dir,
        resume_from=args.resume_from,
        auto_resume=args.auto_resume,
        load_from=args.load_from,
        validate=not args.no_validate,
        cfg_options=parse_cfg_options(args.cfg_options),
        seed=args.seed,
        auto_scale_lr=args.auto_scale_lr,
        deterministic=args.deterministic,
        fp16=args.fp16,
        launcher=args.launcher,
        local_rank=args.local_rank,
        gpu_id=args.gpu_id,
        tracking=tracking_request(args),
    )


LAUNCHER_STOP_S = 60  # how long torchrun or srun gets to stop its processes after SIGTERM


def run_launcher(command: list[str]) -> int:
    """Run the process launcher; when this process is stopped (SIGTERM, Ctrl-C) the launcher
    gets SIGTERM and time to stop the training processes it started in their own sessions.
    subprocess.run would SIGKILL it and leave them training on, unlocked, on their GPUs."""
    launcher = subprocess.Popen(command)
    try:
        return launcher.wait()
    except BaseException:
        launcher.terminate()
        try:
            launcher.wait(timeout=LAUNCHER_STOP_S)
        except BaseException:  # its time is up, or a second Ctrl-C: no more waiting
            launcher.kill()
            launcher.wait()
        raise


def launcher_failure(launcher: str, processes: int, status: int) -> str:
    """What ended a run of `processes` training processes whose launcher (torchrun, srun) exited with `status`."""
    return f"a training process failed, so {launcher} stopped all {processes} (exit status {status})"


def file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def main(args: argparse.Namespace) -> int:
    if args.gpus is not None and args.gpus < 1:
        raise LCPError(f"--gpus {args.gpus}: give 1 or more (no GPU: leave --gpus out)")
    request = training_request(args)
    if args.gpus is not None and args.gpus > 1 and args.launcher == "none":
        from lcp.apis.distributed import first_failure, process_launch_command
        from lcp.apis.training_lock import training_lock
        from lcp.tracking.run_file import RUN_FILE, fail_stopped_run

        # once here, instead of in every process under the launcher's error report
        _, work_dir = checked_training_config(request)
        run_file = Path(work_dir) / RUN_FILE
        with training_lock(work_dir), tempfile.TemporaryDirectory(prefix="lcp-launcher-") as launcher_files:
            command = process_launch_command(args.gpus, args._argv, log_dir=launcher_files)
            print(f"lcp train: {args.gpus} processes: {' '.join(command)}", file=sys.stderr, flush=True)
            run_before = file_identity(run_file)
            status = run_launcher(command)
            if status == 0:
                return 0
            launcher = "srun" if command[0] == "srun" else "torchrun"
            failed = launcher_failure(launcher, args.gpus, status)
            failure = first_failure(launcher_files) if status > 0 else None  # not for a killed launcher
            if status > 0 and file_identity(run_file) != run_before:  # rank 0 wrote it: this training's run
                fail_stopped_run(Path(work_dir), failure.error if failure else failed)
        # the launcher's report ends the log, and the processes it stopped say only "terminated (SIGTERM)"
        print(
            f"lcp train: error: {failed}; {launcher}'s report above names the one that failed first and how it "
            "ended; its own error, if it printed one, is above that",
            file=sys.stderr,
        )
        return failure.status if failure else status  # torchrun's is 1 even for an exit-2 refusal
    try:
        train_from_config(request)
    except Exception as exc:
        if request.launcher != "none":
            record_failure(exc)
        raise
    return 0
