"""One training per work dir: `lcp train` holds a lock on `<work dir>/lcp-train.lock` while it runs.

Two trainings in one work dir overwrite each other's checkpoints and logs. It happens on a
cluster: the login node's snakemake dies (a lost SSH session), its SLURM job trains on, and
the rerun (after `--unlock`) submits the same training again. The lock is an flock, so the
kernel releases it when its process ends, however it ends: a stale lock cannot stay behind.
On a file system without flock support the training goes on unlocked, with lcp.io.lock's
warning. Where flocks stay on each node (BeeGFS by default, NFS mounted with local_lock=flock, Lustre's
localflock), the lock does not see a training on another node.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from lcp.errors import LCPError
from lcp.io import lock

LOCK_FILE = "lcp-train.lock"

# The lock's file descriptors this process holds. A forked child (a data-loader worker) closes its
# copies: the lock belongs to the open file, which a child kept open after its trainer was killed
# (kill -9, the OOM killer), so the job's retry found the work dir locked by a dead pid.
_HELD: set[int] = set()


def _close_in_child() -> None:
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_child)


def _busy(work_dir: Path, fd: int) -> LCPError:
    holder = os.pread(fd, 256, 0).decode(errors="replace").strip() or "holder unknown"
    return LCPError(
        f"{work_dir}: another training is running in it ({holder}); wait for it to end or stop it "
        "(on SLURM: squeue, scancel) before training here"
    )


@contextlib.contextmanager
def training_lock(work_dir: str | os.PathLike) -> Iterator[None]:
    """Hold the work dir's training lock (creating the folder), or LCPError naming its holder."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    _HELD.add(fd)
    try:
        try:
            locked = lock(fd, path, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(work_dir, fd) from None
        if locked:
            os.ftruncate(fd, 0)
            holder = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
            os.pwrite(fd, holder.encode(), 0)
        yield
    finally:
        _HELD.discard(fd)
        os.close(fd)  # releases the lock


def check_no_training(work_dir: str | os.PathLike) -> None:
    """LCPError when a training holds the work dir's lock; creates nothing."""
    path = Path(work_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(Path(work_dir), fd) from None
    except OSError:
        pass
    finally:
        os.close(fd)
