"""`DFPairedDataset`: each low-quality training sample gets a detection-favoured image.

By default (pairing='random', the authors' recipe) the detection-favoured image is unpaired:
any image of the DF folder. With pairing='source' a synthesised low-quality sample gets the
clean image it was made from (its `source` in the synthesis.json that `lcp data synth`
writes beside its images), so the catch-up learner's KL compares an image's features with
its own clean features.

Which detection-favoured (DF) image a sample gets is a pure function of (seed, epoch,
sample index) - `df_choice` below - so it does not depend on the number of data-loader
workers, on their start method (fork or spawn) or on anything a worker did before.

The epoch reaches the workers as follows. mmcv's EpochBasedRunner.train() calls the
`before_train_epoch` hooks and only then iterates the data loader; without persistent
workers, every `iter(data_loader)` starts new workers, which get the dataset as it is at
that moment (a fork copies it, a spawn pickles it). `DFPairingHook` (lcp/hooks/pairing.py)
calls `set_epoch(runner.epoch)` in `before_train_epoch`, so the workers of epoch e see
epoch e. Persistent workers would keep the first epoch's copy forever: the hook refuses
them. A dataset whose epoch was never set refuses to produce samples, so a config that
forgets the hook fails at once instead of silently reusing one pairing every epoch.
"""

from __future__ import annotations

import copy
import os.path as osp
from pathlib import Path
from typing import Any

import numpy as np
from mmdet.datasets import DATASETS, build_dataset

from lcp.data.images import list_images
from lcp.datasets.config_checks import check_dataset_cfg
from lcp.errors import LCPError


def df_choice(seed: int, epoch: int, index: int, num_df_images: int) -> int:
    """Index of the DF image that sample `index` gets in `epoch` (0-based) for `seed`."""
    return int(np.random.default_rng((seed, epoch, index)).integers(num_df_images))


@DATASETS.register_module()
class DFPairedDataset:
    """Wrap an mmdet dataset of low-quality images; pair each sample with a DF image.

    Args:
        dataset (dict): config of the wrapped dataset (e.g. a CocoDataset with
            `classes`); its pipeline must contain `LoadDFImage` after
            `LoadImageFromFile`, and `DFFormatBundle` + `Collect(keys=[..., 'img_df'])`.
        df_img_prefix (str): a flat folder of detection-favoured images (no annotations).
        data_root (str, optional): a relative df_img_prefix is joined to it (as mmdet
            does for img_prefix).
        seed (int, optional): pairing seed; None (the configs' choice): the run's seed, which
            DFPairingHook reads from runner.meta (`lcp train` and mmdet's tools/train.py both
            record it there), else 0.
        pairing (str): 'random' (an unpaired DF image drawn by `df_choice`, the authors'
            recipe) or 'source' (the DF image each training image was synthesised from; the
            training images must come from `lcp data synth`).
        df_ann_file (str, optional): a COCO file whose images are the DF images that may be
            drawn (joined to data_root when relative); None: every image of the folder. The
            workflow gives the clean set's train split, so that the clean originals of the
            test images, which the baseline never sees, stay out of LCP's training too.
    """

    PAIRINGS = ("random", "source")

    def __init__(
        self,
        dataset: dict,
        df_img_prefix: str,
        data_root: str | None = None,
        seed: int | None = None,
        pairing: str = "random",
        df_ann_file: str | None = None,
    ):
        check_dataset_cfg(dataset)
        if data_root is not None and df_img_prefix and not osp.isabs(df_img_prefix):
            df_img_prefix = osp.join(data_root, df_img_prefix)
        if data_root is not None and df_ann_file and not osp.isabs(df_ann_file):
            df_ann_file = osp.join(data_root, df_ann_file)
        self.df_img_prefix = df_img_prefix
        what = "detection-favoured image folder (df_img_prefix)"
        self.df_filenames = [path.name for path in list_images(df_img_prefix, what)]
        if df_ann_file:
            self.df_filenames = self._listed_in(df_ann_file)
        # drawn at random: a link to a missing file would fail in a data-loader worker, epochs later
        if gone := next((name for name in self.df_filenames if not osp.exists(osp.join(df_img_prefix, name))), None):
            raise LCPError(f"{osp.join(df_img_prefix, gone)}: a link to a missing file, in the {what}")
        self.dataset = build_dataset(copy.deepcopy(dataset))
        if pairing not in self.PAIRINGS:
            raise LCPError(f"DFPairedDataset: pairing={pairing!r} is not one of {list(self.PAIRINGS)}")
        self.pairing = pairing
        self.sources = self._synthesis_sources() if pairing == "source" else None
        self.configured_seed = seed
        self.seed = 0 if seed is None else int(seed)
        self.epoch: int | None = None
        self.CLASSES = self.dataset.CLASSES
        self.PALETTE = getattr(self.dataset, "PALETTE", None)
        self.test_mode = getattr(self.dataset, "test_mode", False)
        # mmdet's GroupSampler batches images of the same aspect-ratio group.
        self.flag = getattr(self.dataset, "flag", np.zeros(len(self.dataset), dtype=np.uint8))

    def set_epoch(self, epoch: int, run_seed: int | None = None) -> None:
        """Pair for `epoch` (0-based); `run_seed` seeds the pairing when the config gave no seed."""
        self.epoch = int(epoch)
        if self.configured_seed is None and run_seed is not None:
            self.seed = int(run_seed)

    def __getattr__(self, name: str):
        # the wrapped dataset's other attributes (get_cat_ids, get_ann_info, data_infos, ...), which
        # mmdet's wrappers (ClassBalancedDataset) and tools read
        if name.startswith("__") or "dataset" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return getattr(self.dataset, name)

    def df_filename(self, index: int) -> str:
        if self.epoch is None:
            raise LCPError(
                "DFPairedDataset: the epoch was never set; add dict(type='DFPairingHook') to "
                "custom_hooks (or call dataset.set_epoch(epoch) before iterating)"
            )
        if self.sources is not None:
            return self.sources[index]
        return self.df_filenames[df_choice(self.seed, self.epoch, index, len(self.df_filenames))]

    def _listed_in(self, ann_file: str) -> list[str]:
        """The DF images that `ann_file` lists, in folder order; each must be in the folder."""
        from lcp.data.coco import load_coco

        listed = {osp.basename(image["file_name"]) for image in load_coco(ann_file)["images"]}
        missing = sorted(listed - set(self.df_filenames))
        if missing:
            raise LCPError(f"{ann_file}: lists {missing[0]}, which is not in {self.df_img_prefix} (df_ann_file)")
        if not listed:
            raise LCPError(f"{ann_file}: lists no images, so there is no detection-favoured image to draw")
        return [name for name in self.df_filenames if name in listed]

    def _synthesis_sources(self) -> list[str]:
        """The DF image name of every sample, read from its image folder's synthesis.json."""
        from lcp.data.check.gate import read_sidecar
        from lcp.data.synth import SIDECAR_NAME

        names = [info["filename"] for info in self.dataset.data_infos]
        folder = Path(self.dataset.img_prefix or ".")
        record_file = folder / SIDECAR_NAME
        sidecar = read_sidecar(folder)  # one line for a file that is not one
        if sidecar is None:
            raise LCPError(
                f"{record_file}: pairing='source' needs the synthesis record that `lcp data synth` "
                "writes beside the low-quality images (file not found)"
            )
        images = sidecar["images"]
        available = set(self.df_filenames)
        sources = []
        for name in names:
            source = images.get(osp.basename(name), {}).get("source")
            if not isinstance(source, str) or source not in available:
                raise LCPError(
                    f"{record_file}: {osp.basename(name)} has no source image in {self.df_img_prefix} "
                    f"(pairing='source'; recorded source: {source})"
                )
            sources.append(source)
        return sources

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.test_mode:
            return self.dataset[index]
        while True:
            data = self._prepare_train(index)
            if data is not None:
                return data
            # the pipeline dropped the sample (e.g. no box left): mmdet picks another one
            index = self.dataset._rand_another(index)

    def _prepare_train(self, index: int) -> dict[str, Any] | None:
        # mirrors mmdet's CustomDataset.prepare_train_img, adding the DF image's name
        dataset = self.dataset
        results = dict(img_info=dataset.data_infos[index], ann_info=dataset.get_ann_info(index))
        if getattr(dataset, "proposals", None) is not None:
            results["proposals"] = dataset.proposals[index]
        dataset.pre_pipeline(results)
        results["df_prefix"] = self.df_img_prefix
        results["df_info"] = dict(filename=self.df_filename(index))
        return dataset.pipeline(results)

    def evaluate(self, *args, **kwargs):
        return self.dataset.evaluate(*args, **kwargs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dataset={type(self.dataset).__name__} of {len(self)} images, "
            f"df_img_prefix={self.df_img_prefix!r} with {len(self.df_filenames)} images, "
            f"seed={self.seed}, pairing={self.pairing!r})"
        )
