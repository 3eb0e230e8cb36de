"""`RandomStateHook`: the random state travels with every checkpoint, so a resumed run draws
exactly what an uninterrupted one draws.

What draws random numbers while training, and from where:
- mmdet's GroupSampler shuffles (and pads) each epoch from numpy's global generator;
- every `iter(data_loader)` (training's each epoch, evaluation's too) draws a base seed for
  its workers from torch's global generator, with or without workers; without workers,
  the pipeline (RandomFlip, ...) draws from numpy's and Python's global generators here;
- the model draws from torch's (proposal sampling: torch.randperm) and CUDA's generators.
The detection-favoured pairing (a function of seed, epoch and index), the train mode (of the
epoch), DistributedGroupSampler (seeded with seed + epoch) and the workers (mmdet seeds them
with seed + worker) need nothing restored.

So after each training epoch, before the checkpoint is saved (this hook has the highest
priority; mmcv's CheckpointHook has NORMAL), the hook captures the generators' states into
runner.meta, which mmcv saves with the checkpoint and restores on resume. Before each
training epoch it sets the generators to the state captured at the end of the previous
one: after a resume that is the checkpoint's state, and in an uninterrupted run it undoes
whatever ran between the epochs (evaluation's data loader draws a base seed too), so both
start the epoch from the same state. With several processes, every rank's state is
gathered into rank 0's checkpoint and each rank gets its own back.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from mmcv.runner import HOOKS, Hook, get_dist_info

META_KEY = "random_state"


def capture_random_state() -> dict[str, Any]:
    """The states of Python's, numpy's, torch's and (when used) CUDA's global generators, as
    tensors and plain Python values (a checkpoint's meta must load with weights_only=True)."""
    kind, key, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "key": torch.from_numpy(key.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_random_state(state: dict[str, Any]) -> None:
    """Set the global generators to `state` (from capture_random_state).

    mmcv's resume maps a checkpoint's tensors to the GPU when there is one; the generators
    take their states on the CPU.
    """
    random.setstate(_as_tuples(state["python"]))
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["kind"],
            numpy["key"].cpu().numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


def _as_tuples(value):
    """random.setstate needs tuples; a checkpoint may hand lists back."""
    return tuple(_as_tuples(item) for item in value) if isinstance(value, (list, tuple)) else value


def _on_gpu(model) -> bool:
    return any(param.is_cuda for param in model.parameters())


def _gathered(state: dict[str, Any], world_size: int) -> list[dict[str, Any]]:
    if world_size == 1:
        return [state]
    import torch.distributed as dist

    states: list[Any] = [None] * world_size
    dist.all_gather_object(states, state)
    return states


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the random state with each checkpoint and restore it on resume (see the module).

    `lcp train` registers it itself, with priority HIGHEST.
    """

    def __init__(self):
        self._saved: dict[str, Any] | None = None  # {'epoch': finished epochs, 'ranks': [state per rank]}

    def before_run(self, runner) -> None:
        # taken out of runner.meta: mmcv's TextLoggerHook writes runner.meta to the json log
        # in its before_run (this hook's runs first), and tensors are not json
        self._saved = (runner.meta or {}).pop(META_KEY, None)
        if runner.epoch > 0 and self._saved is None:
            runner.logger.warning(
                f"RandomStateHook: the checkpoint resumed at epoch {runner.epoch} holds no random state "
                "(made by an older lcp); this run draws other random numbers than an uninterrupted one"
            )
        threads = (self._saved or {}).get("threads")
        if threads is not None and threads != torch.get_num_threads() and not _on_gpu(runner.model):
            runner.logger.warning(
                f"RandomStateHook: the checkpoint resumed at epoch {runner.epoch} was trained on {threads} CPU "
                f"threads and this run has {torch.get_num_threads()}; the CPU sums in another order, so this run "
                f"ends other than an uninterrupted one (set OMP_NUM_THREADS={threads} to resume it exactly)"
            )

    def after_train_epoch(self, runner) -> None:
        _, world_size = get_dist_info()
        # mmcv counts the epoch as finished only after these hooks: runner.epoch + 1 are done
        self._saved = {
            "epoch": runner.epoch + 1,
            "ranks": _gathered(capture_random_state(), world_size),
            "threads": torch.get_num_threads(),  # a CPU training's sums depend on it
        }
        if runner.meta is None:
            runner.meta = {}
        runner.meta[META_KEY] = self._saved  # saved with the checkpoint by CheckpointHook

    def before_train_epoch(self, runner) -> None:
        saved = self._saved
        if saved is None or saved["epoch"] != runner.epoch:
            return
        rank, world_size = get_dist_info()
        if len(saved["ranks"]) != world_size:
            runner.logger.warning(
                f"RandomStateHook: the random state of epoch {runner.epoch} was saved by {len(saved['ranks'])} "
                f"processes and this run has {world_size}; it is not restored, so this run draws other "
                "random numbers than an uninterrupted one"
            )
            return
        restore_random_state(saved["ranks"][rank])
