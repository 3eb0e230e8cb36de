"""Checkpoints written whole or not at all, and a best checkpoint removed only once its successor is.

mmcv writes `epoch_N.pth` in place, so a full disk or a quota left a truncated file under its
final name (lcp.apis.resume skips it, a user copying it does not), and its EvalHook removed
the previous best checkpoint before writing the new one, so a failed write left no best
checkpoint at all. Here each checkpoint is written under a hidden temporary name beside its
final one (lcp.io.atomic_path: a failed write names the file, one line) and renamed into
place; `latest.pth` is repointed by a rename too, and the previous best goes after its
successor is in place.
"""

from __future__ import annotations

import os
from pathlib import Path

from lcp.io import atomic_path


def save_checkpoints_atomically(runner) -> None:
    """Make `runner.save_checkpoint` (mmcv's epoch-based runner's, which CheckpointHook and
    EvalHook call) write through a temporary file."""
    write = runner.save_checkpoint

    def save_checkpoint(out_dir, filename_tmpl="epoch_{}.pth", save_optimizer=True, meta=None, create_symlink=True):
        name = filename_tmpl.format(runner.epoch + 1)
        with atomic_path(Path(out_dir) / name) as staged:
            write(
                str(staged.parent),
                filename_tmpl=staged.name,
                save_optimizer=save_optimizer,
                meta=meta,
                create_symlink=False,
            )
        if create_symlink:
            point_latest_at(Path(out_dir), name)

    runner.save_checkpoint = save_checkpoint


def point_latest_at(out_dir: Path, name: str) -> None:
    """`latest.pth` -> `name`, replaced by a rename: it is never missing or half-made."""
    staged = out_dir / f".latest.pth.{os.getpid()}.tmp"
    staged.unlink(missing_ok=True)
    os.symlink(name, staged)
    os.replace(staged, out_dir / "latest.pth")


def best_kept_until_replaced(eval_hook: type) -> type:
    """`eval_hook` (mmdet's EvalHook or DistEvalHook) removing its previous best checkpoint
    after the new one is saved instead of before."""

    class BestKeptUntilReplaced(eval_hook):
        def _save_ckpt(self, runner, key_score):
            previous, self.best_ckpt_path = self.best_ckpt_path, None  # mmcv removes what this names
            try:
                super()._save_ckpt(runner, key_score)
            finally:
                if self.best_ckpt_path is None:  # not a better score: nothing saved
                    self.best_ckpt_path = previous
            if previous and previous != self.best_ckpt_path and os.path.isfile(previous):
                os.remove(previous)
                runner.logger.info(f"The previous best checkpoint {previous} was removed")

    BestKeptUntilReplaced.__name__ = eval_hook.__name__  # the runner's log names hooks by class
    return BestKeptUntilReplaced
