"""A runner hook for the distributed-training tests: each rank saves, per epoch, the training
mode, the trainable parameter names, every parameter before and after the epoch, and the
detection-favoured image its dataset pairs with each sample (rank{R}_epoch{E}.pt in out_dir)."""

import os

import torch
from mmcv.runner import HOOKS, Hook, get_dist_info

from lcp.errors import LCPError
from lcp.hooks.pairing import paired_datasets


@HOOKS.register_module()
class DDPProbeHook(Hook):
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.record = None

    @staticmethod
    def _detector(runner):
        return getattr(runner.model, "module", runner.model)

    def before_train_epoch(self, runner):
        detector = self._detector(runner)
        (dataset,) = paired_datasets(runner.data_loader.dataset)
        self.record = dict(
            mode=detector.train_mode,
            trainable=sorted(name for name, p in detector.named_parameters() if p.requires_grad),
            before={name: p.detach().clone() for name, p in detector.named_parameters()},
            pairing=[dataset.df_filename(i) for i in range(len(dataset))],
            df_filenames=list(dataset.df_filenames),
            seed=dataset.seed,
            epoch=dataset.epoch,
            ddp=type(runner.model).__name__,
        )

    def after_train_epoch(self, runner):
        detector = self._detector(runner)
        self.record["after"] = {name: p.detach().clone() for name, p in detector.named_parameters()}
        self.record["grads_none"] = sorted(name for name, p in detector.named_parameters() if p.grad is None)
        rank, world_size = get_dist_info()
        self.record["world_size"] = world_size
        os.makedirs(self.out_dir, exist_ok=True)
        torch.save(self.record, os.path.join(self.out_dir, f"rank{rank}_epoch{runner.epoch + 1}.pt"))


@HOOKS.register_module()
class FailOnRankHook(Hook):
    """Raises on rank `rank` before epoch `epoch` (1-based): one process of a run fails (with
    `refuse`, refuses its input: exit 2)."""

    def __init__(self, rank, epoch, refuse=False):
        self.rank, self.epoch, self.refuse = rank, epoch, refuse

    def before_train_epoch(self, runner):
        if get_dist_info()[0] == self.rank and runner.epoch + 1 == self.epoch:
            message = f"FailOnRankHook: rank {self.rank} fails in epoch {self.epoch}"
            raise LCPError(message) if self.refuse else RuntimeError(message)
