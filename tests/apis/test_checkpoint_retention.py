"""Bounded checkpoints: mmcv's CheckpointHook keeps the last max_keep_ckpts epochs and its
EvalHook the best one, and a resumed run goes on replacing that one best file. An epoch is
evaluated before its checkpoint is saved, so a run killed while evaluating trains that epoch
again instead of never evaluating it.

A real mmcv runner with a one-weight model and an evaluation whose scores are scripted per
epoch, as lcp.apis.train sets the hooks up."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest
import torch
from mmcv.runner import CheckpointHook, EpochBasedRunner, EvalHook, OptimizerHook

from lcp.apis.checkpoint_saving import best_kept_until_replaced, save_checkpoints_atomically
from lcp.apis.resume import find_resume_checkpoint, is_complete_checkpoint, restore_best_record
from lcp.apis.train import EVAL_PRIORITY, epoch_pauses_skipped


class OneWeight(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def train_step(self, data, optimizer):
        loss = ((self.weight - data) ** 2).sum()
        return {"loss": loss, "log_vars": {"loss": float(loss.detach())}, "num_samples": len(data)}

    def forward(self, return_loss=False, x=None):
        return [0] * len(x)


class ScriptedScores(torch.utils.data.Dataset):
    """One sample to evaluate; evaluate() returns the next scripted score."""

    def __init__(self, scores: list[float]):
        self.scores = list(scores)

    def __len__(self):
        return 1

    def __getitem__(self, index):
        return {"x": torch.zeros(1)}

    def evaluate(self, results, logger=None):
        score = self.scores.pop(0)
        if score is None:  # the job is killed while evaluating
            raise KeyboardInterrupt
        return {"score": score}


def sgd_runner(model, work_dir: Path, epochs: int) -> EpochBasedRunner:
    return EpochBasedRunner(
        model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        work_dir=str(work_dir),
        logger=logging.getLogger("retention"),
        meta={},
        max_epochs=epochs,
    )


def train(work_dir: Path, epochs: int, scores: list[float | None], resume_from: Path | None = None) -> None:
    runner = sgd_runner(OneWeight(), work_dir, epochs)
    save_checkpoints_atomically(runner)
    runner.register_optimizer_hook(OptimizerHook())
    runner.register_hook(CheckpointHook(interval=1, max_keep_ckpts=1))
    evaluation = torch.utils.data.DataLoader(ScriptedScores(scores), batch_size=1)
    hook = best_kept_until_replaced(EvalHook)(evaluation, interval=1, save_best="score", rule="greater")
    runner.register_hook(hook, priority=EVAL_PRIORITY)
    if resume_from is not None:
        runner.resume(str(resume_from))
        restore_best_record(runner)
    with epoch_pauses_skipped(True):
        runner.run([torch.utils.data.DataLoader(torch.arange(2.0), batch_size=2)], [("train", 1)])


def checkpoints(work_dir: Path) -> set[str]:
    return {path.name for path in work_dir.glob("*.pth")}


def test_the_last_epochs_and_the_best_are_kept_and_a_resumed_run_replaces_the_same_best(tmp_path):
    train(tmp_path, 2, scores=[0.1, 0.5])
    assert checkpoints(tmp_path) == {"epoch_2.pth", "latest.pth", "best_score_epoch_2.pth"}

    # epoch 3 scores below epoch 2: epoch_2.pth's own record says the best was 0.1 (epoch 1)
    train(tmp_path, 3, scores=[0.3], resume_from=find_resume_checkpoint(tmp_path))
    assert checkpoints(tmp_path) == {"epoch_3.pth", "latest.pth", "best_score_epoch_2.pth"}

    train(tmp_path, 4, scores=[0.9], resume_from=find_resume_checkpoint(tmp_path))
    assert checkpoints(tmp_path) == {"epoch_4.pth", "latest.pth", "best_score_epoch_4.pth"}
    best = torch.load(tmp_path / "best_score_epoch_4.pth", weights_only=False)["meta"]["hook_msgs"]
    assert best["best_score"] == 0.9


def test_a_best_checkpoint_from_after_the_resumed_epoch_is_not_adopted(tmp_path):
    train(tmp_path, 2, scores=[0.1, 0.5])
    runner = EpochBasedRunner(OneWeight(), work_dir=str(tmp_path), logger=logging.getLogger("retention"), meta={})
    runner.resume(str(tmp_path / "epoch_2.pth"), resume_optimizer=False)
    assert restore_best_record(runner) == tmp_path / "best_score_epoch_2.pth"
    assert runner.meta["hook_msgs"]["best_score"] == 0.5
    runner._epoch = 1  # as if resumed from epoch_1.pth, before the best epoch
    runner.meta["hook_msgs"] = {}
    assert restore_best_record(runner) is None and runner.meta["hook_msgs"] == {}


def test_a_run_killed_while_evaluating_an_epoch_trains_and_evaluates_it_again(tmp_path):
    """mmdet's order saved epoch_2.pth first: the resumed run started at epoch 3 and epoch 2
    was never evaluated, its score (here the best) lost for good."""
    try:
        train(tmp_path, 3, scores=[0.1, None])
    except KeyboardInterrupt:
        pass
    assert find_resume_checkpoint(tmp_path) == tmp_path / "epoch_1.pth"
    assert torch.load(tmp_path / "epoch_1.pth", weights_only=False)["meta"]["hook_msgs"]["best_score"] == 0.1
    train(tmp_path, 3, scores=[0.9, 0.2], resume_from=find_resume_checkpoint(tmp_path))
    assert checkpoints(tmp_path) == {"epoch_3.pth", "latest.pth", "best_score_epoch_2.pth"}


@pytest.mark.parametrize("failing", ["best_score_epoch_3.pth", "epoch_3.pth"])
def test_a_checkpoint_the_disk_cannot_hold_leaves_no_part_and_the_previous_best_whole(tmp_path, monkeypatch, failing):
    """mmcv wrote in place (a truncated epoch_3.pth under its final name) and removed the previous
    best checkpoint before writing the new one (a full disk left no best checkpoint at all)."""
    from mmcv.fileio.file_client import HardDiskBackend

    train(tmp_path, 2, scores=[0.1, 0.5])
    put = HardDiskBackend.put

    def disk_full_half_way(self, obj, filepath):
        if Path(filepath).name.startswith(f".{failing}."):
            Path(filepath).write_bytes(obj[: len(obj) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        put(self, obj, filepath)

    monkeypatch.setattr(HardDiskBackend, "put", disk_full_half_way)
    with pytest.raises(OSError) as failed:
        train(tmp_path, 3, scores=[0.9], resume_from=find_resume_checkpoint(tmp_path))
    assert failed.value.filename == str(tmp_path / failing)  # named as the file it was going to be
    on_disk = {path.name for path in tmp_path.iterdir() if path.suffix in (".pth", ".tmp")}
    assert failing not in on_disk and not [name for name in on_disk if name.startswith(".")]
    assert {"epoch_2.pth", "latest.pth"} <= on_disk
    best = "best_score_epoch_3.pth" if failing == "epoch_3.pth" else "best_score_epoch_2.pth"
    assert [name for name in on_disk if name.startswith("best_")] == [best]
    assert all(is_complete_checkpoint(tmp_path / name) for name in on_disk)
    assert (tmp_path / "latest.pth").readlink() == Path("epoch_2.pth")


class EvaluatedWeight(torch.utils.data.Dataset):
    """One sample; evaluate() returns the weight the model had when it was evaluated."""

    def __len__(self):
        return 1

    def __getitem__(self, index):
        return {"x": torch.zeros(1)}

    def evaluate(self, results, logger=None):
        return {"weight": float(results[0])}


class WeightOut(OneWeight):
    def forward(self, return_loss=False, x=None):
        return [float(self.weight)]


def test_with_mmdets_ema_hook_the_evaluated_weights_are_the_saved_ones(tmp_path):
    """mmdet's EMA hook swaps the averaged weights in at priority 49, after lcp's evaluation
    (ABOVE_NORMAL) and before the checkpoint: the val AP and the best checkpoint were the raw
    weights', the checkpoint (what `lcp test` and the workflow evaluate) held the averaged ones."""
    from mmdet.core.hook import ExpMomentumEMAHook

    from lcp.apis.train import eval_priority

    runner = sgd_runner(WeightOut(), tmp_path, epochs=1)
    runner.register_optimizer_hook(OptimizerHook())
    runner.register_hook(CheckpointHook(interval=1))
    runner.register_hook(ExpMomentumEMAHook(momentum=0.5, total_iter=1), priority=49)  # as in mmdet's configs
    evaluation = torch.utils.data.DataLoader(EvaluatedWeight(), batch_size=1)
    runner.register_hook(EvalHook(evaluation, interval=1), priority=eval_priority(runner))
    with epoch_pauses_skipped(True):
        runner.run([torch.utils.data.DataLoader(torch.arange(4.0).reshape(2, 2), batch_size=1)], [("train", 1)])
    saved = torch.load(tmp_path / "epoch_1.pth", weights_only=False)["state_dict"]
    assert not torch.equal(saved["weight"], saved["ema_weight"])  # averaged and raw differ
    assert runner.log_buffer.output["weight"] == float(saved["weight"])
