"""Finding the checkpoint a killed training run resumes from (lcp.models.checkpoint loads weights).

mmcv writes `epoch_N.pth` in place and then points the `latest.pth` symlink at it, so a run
killed while saving could leave a truncated newest file (and, between the two steps, a
missing or stale `latest.pth`); lcp.apis.checkpoint_saving now writes them whole, and work
dirs of older runs are still read as they are. torch.save writes a zip archive whose central directory
comes last, so a truncated checkpoint is recognised without loading it, and resuming falls
back to the newest complete one.

With evaluation during training, mmcv's EvalHook (save_best) also keeps the best checkpoint
as `best_<metric>_epoch_N.pth`, and its score in runner.meta. lcp.apis.train evaluates before
the epoch's checkpoint is saved, so `epoch_N.pth` knows whether epoch N was the best; with
mmdet's order (and in checkpoints from before lcp changed it) it does not:
`restore_best_record` gives a resumed runner the record of the best checkpoint on disk.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

# written into a work dir by `lcp workdir finish` (lcp.workflow.workdir) once its checkpoint is published
FINISHED_RECORD = "lcp-finished.json"
CHECKPOINT_NAME = re.compile(r"^(?:epoch|iter)_(\d+)\.pth$")
BEST_CHECKPOINT_NAME = re.compile(r"^best_.+_(?:epoch|iter)_(\d+)\.pth$")


def is_complete_checkpoint(path: Path) -> bool:
    try:
        return path.is_file() and zipfile.is_zipfile(path)
    except OSError:
        return False


def numbered_checkpoints(work_dir: str | Path) -> list[Path]:
    """epoch_N.pth / iter_N.pth files of a work dir, newest (highest N) first."""
    work_dir = Path(work_dir)
    if not work_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in work_dir.iterdir() if (m := CHECKPOINT_NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def find_resume_checkpoint(work_dir: str | Path) -> Path | None:
    """The newest complete epoch_N.pth / iter_N.pth in `work_dir`, else a complete latest.pth.

    latest.pth is only a pointer to the newest numbered checkpoint (a copy where symlinks
    are unsupported), so the numbered files decide; a truncated one is skipped.
    """
    for path in numbered_checkpoints(work_dir):
        if is_complete_checkpoint(path):
            return path
    latest = Path(work_dir) / "latest.pth"
    return latest if is_complete_checkpoint(latest) else None


def restore_best_record(runner) -> Path | None:
    """Point a resumed runner's best-checkpoint record (runner.meta["hook_msgs"]: best_score,
    best_ckpt) at the newest complete best_*_N.pth of its work dir with N up to the resumed
    epoch (lcp train runs epoch-based runners only), so that the next better score replaces that file instead of
    keeping a second one, and a worse one does not. Returns the file, or None."""
    import torch

    found = sorted(
        (int(m.group(1)), p)
        for p in Path(runner.work_dir).iterdir()
        if (m := BEST_CHECKPOINT_NAME.match(p.name)) and int(m.group(1)) <= runner.epoch
    )
    for _, path in reversed(found):
        if not is_complete_checkpoint(path):
            continue
        meta = torch.load(path, map_location="cpu", weights_only=False, mmap=True).get("meta") or {}
        record = meta.get("hook_msgs", {})
        if "best_score" in record:
            hook_msgs = runner.meta.setdefault("hook_msgs", {})
            hook_msgs.update(best_score=record["best_score"], best_ckpt=str(path))
            return path
    return None
