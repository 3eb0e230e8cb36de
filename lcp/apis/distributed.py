"""Training on several GPUs or nodes: process-group setup for `lcp train --launcher pytorch|slurm`,
and the DistributedDataParallel wrapper mmcv's runner drives.

Why not mmcv's own pieces:
- mmcv's init_dist calls torch.cuda.set_device(rank % device_count) and so cannot start a
  CPU (gloo) group, which the tests use; under SLURM it takes the local rank as
  proc_id % device_count, wrong when a job step gives each task its own GPU
  (--gpus-per-task=1: one visible device per task), and every rank picks a free master
  port on its own host, so ranks on different nodes can disagree.
- mmcv 1.7's MMDistributedDataParallel.train_step re-implements DDP's forward for
  PyTorch 1.x (no lazy init, no forward bookkeeping of the reducer) and its
  _run_ddp_forward reads an attribute current PyTorch no longer has. Here train_step and
  val_step go through DistributedDataParallel.forward itself, so the reducer's unused-
  parameter search runs exactly as PyTorch intends.

LCP changes which parameters train from epoch to epoch (TrainModeHook). DDP registers a
gradient hook on every parameter that requires a gradient when it is built, so the wrapper
must be built while all of them do (LCPDetector.train_mode is None, as before the first
epoch), and find_unused_parameters=True lets the reducer skip the frozen ones in each
iteration: a parameter no rank used keeps .grad None, so the optimizer leaves it alone.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lcp.errors import LCPError

LAUNCHERS = ("pytorch", "slurm")
DEFAULT_PORT = 29500


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: str  # 'cuda' or 'cpu'


def _env_int(name: str, launcher: str) -> int:
    value = os.environ.get(name)
    if value is None:
        raise LCPError(
            f"--launcher {launcher}: environment variable {name} is not set "
            f"({'start with torchrun' if launcher == 'pytorch' else 'start with srun'})"
        )
    try:
        return int(value)
    except ValueError:
        raise LCPError(f"--launcher {launcher}: {name}={value!r} is not an integer") from None


def first_slurm_host(nodelist: str) -> str:
    """The first host name of a SLURM node list such as 'gpu[01-04],big7'."""
    try:
        hosts = subprocess.run(
            ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise LCPError(
            f"--launcher slurm: cannot expand SLURM_NODELIST={nodelist!r} with scontrol ({exc}); set MASTER_ADDR"
        ) from None
    if not hosts:
        raise LCPError(f"--launcher slurm: SLURM_NODELIST={nodelist!r} names no host; set MASTER_ADDR")
    return hosts[0]


def slurm_environment() -> dict[str, str]:
    """torch.distributed's env:// variables from a SLURM job step's (one task per GPU)."""
    rank = _env_int("SLURM_PROCID", "slurm")
    world_size = _env_int("SLURM_NTASKS", "slurm")
    local_rank = _env_int("SLURM_LOCALID", "slurm")
    master_addr = os.environ.get("MASTER_ADDR") or first_slurm_host(os.environ.get("SLURM_NODELIST", ""))
    # the same on every rank of the job, and different for jobs sharing a node
    port = os.environ.get("MASTER_PORT") or str(DEFAULT_PORT + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000)
    return dict(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(local_rank),
        MASTER_ADDR=master_addr,
        MASTER_PORT=port,
    )


def process_launch_command(
    processes: int, lcp_argv: list[str], environ: Mapping[str, str] = os.environ, log_dir: str | None = None
) -> list[str]:
    """The command that runs `lcp LCP_ARGV` as `processes` distributed processes, one per GPU.

    Inside a SLURM job of that many tasks (sbatch --gpus=N --ntasks-per-gpu=1, as the
    workflow submits), srun starts them on every node of the job. snakemake's SLURM job
    step clears the job's SLURM_* variables but its id, so a job without SLURM_NTASKS is
    taken to be such a job. Elsewhere torchrun starts them on this machine, which a job
    spanning several nodes cannot use.
    """
    lcp = [sys.executable, "-m", "lcp.cli", *lcp_argv]
    if environ.get("SLURM_JOB_ID"):
        tasks = environ.get("SLURM_NTASKS")
        if tasks is None or tasks == str(processes):
            return ["srun", f"--ntasks={processes}", "--kill-on-bad-exit=1", *lcp, "--launcher", "slurm"]
        nodes = environ.get("SLURM_JOB_NUM_NODES", "1")
        if nodes != "1":
            raise LCPError(
                f"--gpus {processes}: this SLURM job has {tasks} task(s) on {nodes} nodes; training "
                f"on several nodes needs a job of one task per GPU (sbatch --gpus={processes} "
                "--ntasks-per-gpu=1)"
            )
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        # torchrun's own files; without it, a torchelastic_* folder stays in $TMPDIR after every run
        *([f"--log-dir={log_dir}"] if log_dir else []),
        "-m",
        "lcp.cli",
        *lcp_argv,
        "--launcher",
        "pytorch",
    ]


def record_failure(exc: Exception) -> None:
    """Under torchrun: this process's error, and the status it exits with, in the error file
    torchrun gives it (TORCHELASTIC_ERROR_FILE; its report quotes the message). torchrun exits 1
    whatever its processes' statuses, so `lcp train --gpus N` reads them there (first_failure)."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    from lcp.cli import exit_status
    from lcp.io import write_json
    from lcp.tracking.client import error_line

    with contextlib.suppress(OSError):  # a full disk: the error itself is still in the log
        write_json(path, {"message": error_line(exc), "timestamp": time.time(), "lcp_exit_status": exit_status(exc)})


@dataclass(frozen=True)
class ProcessFailure:
    error: str
    status: int


def first_failure(log_dir: str | os.PathLike) -> ProcessFailure | None:
    """The failure that came first of those the processes torchrun ran with `log_dir` recorded
    (record_failure), or None: none did (killed by a signal, or not under torchrun)."""
    from lcp.io import read_json

    failures = []
    for path in Path(log_dir).rglob("error.json"):
        try:
            record = read_json(path)
            failures.append((float(record["timestamp"]), str(record["message"]), int(record["lcp_exit_status"])))
        except (LCPError, KeyError, TypeError, ValueError):  # another writer's, or cut short
            continue
    if not failures:
        return None
    _, error, status = min(failures)
    return ProcessFailure(error, status)


def init_distributed(launcher: str, backend: str | None = None, timeout_s: int | None = None) -> DistEnv:
    """Join the process group of this launcher; NCCL on GPUs, gloo on CPUs unless `backend` says."""
    import datetime

    import torch
    import torch.distributed as dist

    if launcher not in LAUNCHERS:
        raise LCPError(f"--launcher {launcher}: expected one of {list(LAUNCHERS)}")
    if launcher == "slurm":
        os.environ.update(slurm_environment())
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise LCPError(f"--launcher {launcher}: environment variable {name} is not set (start with torchrun)")
    rank, world_size = _env_int("RANK", launcher), _env_int("WORLD_SIZE", launcher)
    local_rank = _env_int("LOCAL_RANK", launcher)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        # one task per GPU: all of a node's GPUs are visible (torchrun) or only the task's own
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    if backend is None or (device == "cpu" and backend == "nccl"):
        backend = "nccl" if device == "cuda" else "gloo"
    kwargs = {} if timeout_s is None else dict(timeout=datetime.timedelta(seconds=timeout_s))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size, **kwargs)
    return DistEnv(rank, world_size, local_rank, device)


def _ddp_class():
    from mmcv.parallel import MMDistributedDataParallel
    from mmcv.parallel.scatter_gather import scatter_kwargs

    class LCPDistributedDataParallel(MMDistributedDataParallel):
        """mmcv's DDP wrapper whose train_step/val_step run through DistributedDataParallel.forward.

        DDP.forward does the reducer's bookkeeping (and, with find_unused_parameters, the
        search for parameters the step did not use) around _run_ddp_forward, which here
        unpacks mmcv's DataContainers onto this rank's device and calls the module's
        forward, train_step or val_step.
        """

        def train_step(self, *inputs, **kwargs):
            return self._step_through_forward("train_step", inputs, kwargs)

        def val_step(self, *inputs, **kwargs):
            return self._step_through_forward("val_step", inputs, kwargs)

        def _step_through_forward(self, method: str, inputs, kwargs):
            self._lcp_method = method
            try:
                return self(*inputs, **kwargs)
            finally:
                self._lcp_method = None

        def _run_ddp_forward(self, *inputs, **kwargs):
            target = self.device_ids[0] if self.device_ids else -1  # -1: mmcv's CPU target
            inputs, kwargs = scatter_kwargs(inputs, kwargs, [target], dim=self.dim)
            method = getattr(self, "_lcp_method", None)
            call = getattr(self.module, method) if method else self.module
            return call(*inputs[0], **kwargs[0])

    return LCPDistributedDataParallel


def wrap_distributed(model, device: str, find_unused_parameters: bool):
    """The model on this rank's device inside LCPDistributedDataParallel (mmcv runner compatible)."""
    import torch

    if getattr(model, "train_mode", None) is not None:
        raise ValueError(
            "wrap_distributed: wrap the LCPDetector before set_train_mode; DDP only synchronises "
            "parameters that require a gradient when it is built"
        )
    ddp_class = _ddp_class()
    if device == "cuda":
        model = model.cuda()
        return ddp_class(
            model,
            device_ids=[torch.cuda.current_device()],
            broadcast_buffers=False,
            find_unused_parameters=find_unused_parameters,
        )
    return ddp_class(model, broadcast_buffers=False, find_unused_parameters=find_unused_parameters)
