"""`DFPairingHook`: tells the DFPairedDataset which epoch is starting (see lcp/datasets/df_paired.py)."""

from __future__ import annotations

from mmcv.runner import HOOKS, Hook

from lcp.errors import LCPError


def paired_datasets(dataset) -> list:
    """The DFPairedDatasets inside `dataset`, looking through mmdet's dataset wrappers."""
    from lcp.datasets.df_paired import DFPairedDataset

    if isinstance(dataset, DFPairedDataset):
        return [dataset]
    found = []
    for inner in getattr(dataset, "datasets", None) or []:  # ConcatDataset
        found += paired_datasets(inner)
    if getattr(dataset, "dataset", None) is not None:  # RepeatDataset, ClassBalancedDataset, ...
        found += paired_datasets(dataset.dataset)
    return found


@HOOKS.register_module()
class DFPairingHook(Hook):
    """Set the pairing epoch before the epoch's data-loader workers are started.

    mmcv's EpochBasedRunner calls before_train_epoch before iterating the loader, and
    non-persistent workers are started by that iteration, so they see the new epoch.
    runner.epoch counts finished epochs, so a resumed run pairs exactly as an
    uninterrupted one. A dataset configured without a seed gets the run's, runner.meta['seed'].
    """

    def before_train_epoch(self, runner) -> None:
        loader = runner.data_loader
        datasets = paired_datasets(loader.dataset)
        if not datasets:
            return
        if loader.num_workers > 0 and getattr(loader, "persistent_workers", False):
            raise LCPError(
                "DFPairingHook: the training data loader uses persistent workers, which would keep "
                "the first epoch's detection-favoured pairing; set "
                "data.train_dataloader.persistent_workers=False"
            )
        run_seed = (runner.meta or {}).get("seed")
        for dataset in datasets:
            dataset.set_epoch(runner.epoch, run_seed)
