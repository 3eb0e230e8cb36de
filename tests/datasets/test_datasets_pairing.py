"""DFPairedDataset: the detection-favoured pairing is a function of (seed, epoch, index) only,
whatever the data-loader workers and their start method, and the pair is transformed alike."""

from __future__ import annotations

import copy
import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmcv.runner import EpochBasedRunner, Hook
from mmdet.datasets import build_dataloader, build_dataset

import lcp.datasets  # noqa: F401  registers DFPairedDataset and its pipeline steps
import lcp.hooks  # noqa: F401  registers DFPairingHook
from helpers.tiny_scene import make_tiny_scene
from lcp.apis.config import load_config
from lcp.datasets import df_choice
from lcp.errors import LCPError
from lcp.hooks.pairing import DFPairingHook

REPO = Path(__file__).resolve().parents[2]
LCP_TINY = REPO / "config" / "mmdet" / "lcp_tiny_demo.py"
META_KEYS = (
    "filename",
    "ori_filename",
    "ori_shape",
    "img_shape",
    "pad_shape",
    "scale_factor",
    "flip",
    "flip_direction",
    "img_norm_cfg",
    "df_filename",
)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    root = make_tiny_scene(tmp_path_factory.mktemp("scene"), num_train=6, num_test=1)
    # more detection-favoured images than samples, so that pairings can differ
    for i in range(5):
        shutil.copy(root / "clean" / "img_000.jpg", root / "clean" / f"extra_{i}.jpg")
    return root


def paired_train_cfg(scene: Path, **options):
    """The demo config's training set on `scene`, drawing from the whole DF folder unless `df_ann`."""
    cfg = load_config(LCP_TINY, {"data_root": f"{scene}/", "df_ann": None, **options})
    train = copy.deepcopy(cfg.data.train)
    train.seed = 7
    train.dataset.pipeline[-1].meta_keys = META_KEYS
    return train


def test_df_choice_depends_on_seed_epoch_and_index_only():
    picks = {(s, e, i): df_choice(s, e, i, 50) for s in (0, 1) for e in range(3) for i in range(20)}
    assert picks == {(s, e, i): df_choice(s, e, i, 50) for s in (0, 1) for e in range(3) for i in range(20)}
    assert all(0 <= v < 50 for v in picks.values())
    # epochs and seeds give other pairings (not a constant)
    assert [picks[0, 0, i] for i in range(20)] != [picks[0, 1, i] for i in range(20)]
    assert [picks[0, 0, i] for i in range(20)] != [picks[1, 0, i] for i in range(20)]
    # and the samples of one epoch get different images, spread over the folder
    assert len({picks[0, 0, i] for i in range(20)}) >= 10


def test_pair_goes_through_the_same_resize_flip_normalise_and_pad(tmp_path):
    # the only detection-favoured image is the low-quality image itself, at another size:
    # whatever the random flip decides, both must come out identical
    scene = make_tiny_scene(tmp_path / "scene", num_train=1, num_test=1)
    df_dir = tmp_path / "df"
    df_dir.mkdir()
    lowq = cv2.imread(str(scene / "lowq" / "img_000.jpg"))
    cv2.imwrite(str(df_dir / "same.png"), lowq)
    train = paired_train_cfg(scene, df_img_dir=str(df_dir), img_scale=(96, 64))
    train.dataset.pipeline[4].flip_ratio = 0.5
    dataset = build_dataset(train)
    dataset.set_epoch(0)
    flips = set()
    for _ in range(12):
        sample = dataset[0]
        img, img_df = sample["img"].data, sample["img_df"].data
        assert img.shape == img_df.shape == (3, 64, 96)
        assert torch.equal(img, img_df)
        flips.add(sample["img_metas"].data["flip"])
    assert flips == {True, False}


def test_df_image_of_another_size_is_resized_to_the_low_quality_one(tmp_path):
    scene = make_tiny_scene(tmp_path / "scene", num_train=1, num_test=1)
    df_dir = tmp_path / "df"
    df_dir.mkdir()
    cv2.imwrite(str(df_dir / "wide.jpg"), np.full((50, 300, 3), 128, np.uint8))
    dataset = build_dataset(paired_train_cfg(scene, df_img_dir=str(df_dir)))
    dataset.set_epoch(0)
    sample = dataset[0]
    assert sample["img_df"].data.shape == sample["img"].data.shape == (3, 128, 128)


def test_df_image_is_resized_once_straight_to_the_scale(tmp_path):
    """As the authors' pipeline: the DF image goes from its own size to the scale in one resize (it was
    resized to the low-quality image's size first, then again: a blurred copy of a larger DF image),
    and the sample's scale_factor and shapes stay the low-quality image's, which its boxes need."""
    from mmdet.datasets.pipelines import Compose

    scene = make_tiny_scene(tmp_path / "scene", num_train=1, num_test=1)  # 128x128 low-quality image
    df_dir = tmp_path / "df"
    df_dir.mkdir()
    df_raw = np.random.default_rng(0).integers(0, 256, (50, 300, 3), dtype=np.uint8)
    cv2.imwrite(str(df_dir / "wide.png"), df_raw)
    train = paired_train_cfg(scene, df_img_dir=str(df_dir), img_scale=(96, 64))
    train.dataset.pipeline[4].flip_ratio = 0.0
    dataset = build_dataset(train)
    dataset.set_epoch(0)
    sample = dataset[0]
    norm = train.dataset.pipeline[5]
    alone = Compose(
        [
            dict(type="Resize", img_scale=(96, 64), keep_ratio=False),
            dict(type="Normalize", mean=norm.mean, std=norm.std, to_rgb=norm.to_rgb),
            dict(type="Pad", size_divisor=32),
            dict(type="ImageToTensor", keys=["img"]),
        ]
    )(dict(img=df_raw, img_fields=["img"]))
    assert torch.equal(sample["img_df"].data, alone["img"])
    meta = sample["img_metas"].data
    assert meta["ori_shape"] == (128, 128, 3) and meta["img_shape"] == (64, 96, 3)
    assert meta["scale_factor"].tolist() == [0.75, 0.5, 0.75, 0.5]


def test_a_pair_resized_to_two_shapes_is_refused(tmp_path):
    scene = make_tiny_scene(tmp_path / "scene", num_train=1, num_test=1)
    df_dir = tmp_path / "df"
    df_dir.mkdir()
    cv2.imwrite(str(df_dir / "wide.jpg"), np.full((50, 300, 3), 128, np.uint8))
    train = paired_train_cfg(scene, df_img_dir=str(df_dir))
    train.dataset.pipeline[3].keep_ratio = True
    dataset = build_dataset(train)
    dataset.set_epoch(0)
    with pytest.raises(LCPError, match=r"wide\.jpg: ends at 128x32 pixels, its low-quality image .* at 128x128; "):
        dataset[0]


class PairRecorder(torch.nn.Module):
    """A stand-in detector for the runner: records which DF image each sample got, per epoch."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.pairs: dict[int, dict[str, str]] = {}
        self.epoch = 0

    def train_step(self, data, optimizer):
        metas = data["img_metas"].data[0]
        record = self.pairs.setdefault(self.epoch, {})
        for meta in metas:
            record[meta["ori_filename"]] = Path(meta["df_filename"]).name
        assert data["img_df"].data[0].shape == data["img"].data[0].shape
        return dict(loss=self.weight.sum(), log_vars={}, num_samples=len(metas))


class EpochOfRecorder(Hook):
    def before_train_epoch(self, runner):
        runner.model.epoch = runner.epoch


def run_two_epochs(train_cfg, workers: int, start_method: str | None, tmp_path: Path, meta=None, **loader_args):
    dataset = build_dataset(train_cfg)
    extra = {"multiprocessing_context": start_method} if workers and start_method else {}
    loader = build_dataloader(
        dataset,
        samples_per_gpu=2,
        workers_per_gpu=workers,
        num_gpus=1,
        dist=False,
        shuffle=True,
        seed=0,
        **extra,
        **loader_args,
    )
    model = PairRecorder()
    runner = EpochBasedRunner(
        model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
        work_dir=str(tmp_path),
        logger=logging.getLogger("pairing"),
        max_epochs=2,
        meta=meta,
    )
    runner.register_hook(DFPairingHook())
    runner.register_hook(EpochOfRecorder())
    runner.run([loader], [("train", 1)])
    return dataset, model.pairs


def expected_pairs(dataset, epochs=(0, 1)) -> dict[int, dict[str, str]]:
    inner = dataset.dataset
    return {
        epoch: {
            inner.data_infos[i]["filename"]: dataset.df_filenames[
                df_choice(dataset.seed, epoch, i, len(dataset.df_filenames))
            ]
            for i in range(len(inner))
        }
        for epoch in epochs
    }


@pytest.mark.parametrize("workers,start_method", [(0, None), (1, "fork"), (2, "fork"), (2, "spawn")])
def test_pairing_is_the_same_for_any_workers_and_start_method(scene, tmp_path, workers, start_method):
    dataset, pairs = run_two_epochs(paired_train_cfg(scene), workers, start_method, tmp_path)
    expected = expected_pairs(dataset)
    assert pairs == expected
    assert expected[0] != expected[1]  # the epoch reached the workers


def test_the_run_seed_in_the_runner_meta_seeds_a_pairing_the_config_left_unseeded(scene, tmp_path):
    """mmdet's tools/train.py --seed N and `lcp train --seed N` record N in runner.meta; before, a
    stock run drew the same pairing (seed 0) whatever its seed."""
    draws = {}
    unseeded = paired_train_cfg(scene)
    unseeded.seed = None  # as the configs leave it
    for seed in (11, 12):
        dataset, pairs = run_two_epochs(unseeded, 0, None, tmp_path / str(seed), meta=dict(seed=seed))
        assert dataset.seed == seed and pairs == expected_pairs(dataset)
        draws[seed] = pairs
    assert draws[11] != draws[12]
    dataset, pairs = run_two_epochs(paired_train_cfg(scene), 0, None, tmp_path / "7", meta=dict(seed=11))
    assert dataset.seed == 7 and pairs == expected_pairs(dataset)  # a seed in the config wins


def test_the_wrapped_dataset_shows_through_to_mmdets_class_balanced_sampling(scene):
    balanced = build_dataset(dict(type="ClassBalancedDataset", oversample_thr=0.5, dataset=paired_train_cfg(scene)))
    paired = balanced.dataset
    assert paired.get_cat_ids(0) == paired.dataset.get_cat_ids(0) and paired.data_infos is paired.dataset.data_infos
    assert len(balanced) >= len(paired)
    paired.set_epoch(0)
    assert "img_df" in balanced[0]
    with pytest.raises(AttributeError, match="no attribute 'no_such'"):
        assert paired.no_such is None


def test_persistent_workers_are_refused(scene, tmp_path):
    with pytest.raises(LCPError, match="persistent workers"):
        run_two_epochs(paired_train_cfg(scene), 1, "fork", tmp_path, persistent_workers=True)


def test_a_dataset_whose_epoch_was_never_set_names_the_missing_hook(scene):
    dataset = build_dataset(paired_train_cfg(scene))
    with pytest.raises(LCPError, match="DFPairingHook"):
        dataset[0]


def write_synthesis_record(scene: Path, sources: dict[str, str]) -> None:
    images = {name: {"source": source} for name, source in sources.items()}
    (scene / "lowq" / "synthesis.json").write_text(json.dumps({"tool": "lcp data synth", "images": images}))


def test_source_pairing_gives_each_sample_the_clean_image_it_was_made_from(tmp_path):
    scene = make_tiny_scene(tmp_path / "scene", num_train=4, num_test=1)
    clean = sorted(p.name for p in (scene / "clean").glob("*.jpg"))
    # a shifted record: sample i was made from clean image i+1, so a by-name match would be wrong
    lowq = [info["file_name"] for info in json.loads((scene / "annotations" / "lowq_train.json").read_text())["images"]]
    sources = {name: clean[(i + 1) % len(clean)] for i, name in enumerate(lowq)}
    write_synthesis_record(scene, sources)
    train = paired_train_cfg(scene)
    train.pairing = "source"
    dataset = build_dataset(train)
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        assert {
            dataset.dataset.data_infos[i]["filename"]: dataset.df_filename(i) for i in range(len(dataset))
        } == sources


def test_source_pairing_names_the_record_and_the_sample_it_cannot_pair(tmp_path):
    scene = make_tiny_scene(tmp_path / "scene", num_train=2, num_test=1)
    train = paired_train_cfg(scene)
    train.pairing = "source"
    with pytest.raises(LCPError, match=r"lowq/synthesis.json: pairing='source' needs the synthesis record"):
        build_dataset(train)
    lowq = [info["file_name"] for info in json.loads((scene / "annotations" / "lowq_train.json").read_text())["images"]]
    write_synthesis_record(scene, {lowq[0]: "img_000.jpg", lowq[1]: "not_there.jpg"})
    with pytest.raises(LCPError, match=rf"{lowq[1]} has no source image in .*recorded source: not_there.jpg"):
        build_dataset(train)
    # a record of another shape was a traceback inside the training process
    write_synthesis_record(scene, {lowq[0]: "img_000.jpg", lowq[1]: ["img_001.jpg"]})
    with pytest.raises(LCPError, match=rf"{lowq[1]} has no source image in .*recorded source: \['img_001.jpg'\]"):
        build_dataset(train)
    (scene / "lowq" / "synthesis.json").write_text(json.dumps({"images": ["img_000.jpg"]}))
    with pytest.raises(LCPError, match=r"synthesis.json: not a synthesis sidecar \(no 'images' object\)"):
        build_dataset(train)
    train.pairing = "by_name"
    with pytest.raises(LCPError, match=r"pairing='by_name' is not one of \['random', 'source'\]"):
        build_dataset(train)


def test_df_ann_file_limits_the_pool_to_the_images_it_lists(scene, tmp_path):
    """The workflow gives the clean set's train split: the clean originals of the test images
    were in the pool, so LCP trained towards images the baseline never saw."""
    listed = ["extra_1.jpg", "extra_3.jpg", "img_000.jpg"]
    coco = {
        "images": [{"id": i, "file_name": name} for i, name in enumerate(listed)],
        "annotations": [],
        "categories": [],
    }
    (tmp_path / "df.json").write_text(json.dumps(coco))
    dataset = build_dataset(paired_train_cfg(scene, df_ann=str(tmp_path / "df.json")))
    assert dataset.df_filenames == listed
    whole = build_dataset(paired_train_cfg(scene))
    assert len(whole.df_filenames) > len(listed)
    dataset.set_epoch(0)
    assert {dataset.df_filename(i) for i in range(len(dataset))} <= set(listed)

    coco["images"].append({"id": 9, "file_name": "elsewhere.jpg"})
    (tmp_path / "df.json").write_text(json.dumps(coco))
    with pytest.raises(LCPError, match=r"df.json: lists elsewhere.jpg, which is not in .*clean"):
        build_dataset(paired_train_cfg(scene, df_ann=str(tmp_path / "df.json")))


def test_a_link_to_a_missing_detection_favoured_image_is_refused_when_the_dataset_is_built(tmp_path):
    """Listed with the folder's images (so that its readers name it), it would be drawn at
    random and fail inside a data-loader worker, epochs into the training."""
    root = make_tiny_scene(tmp_path / "scene", num_train=2, num_test=1)
    gone = root / "clean" / "moved.jpg"
    gone.symlink_to(tmp_path / "elsewhere.jpg")
    with pytest.raises(LCPError, match=f"{gone}: a link to a missing file, in the detection-favoured image folder"):
        build_dataset(paired_train_cfg(root))
    # a stale link the df_ann_file does not list is never drawn: no reason to refuse
    listed = {"images": [{"id": 1, "file_name": "img_000.jpg"}], "annotations": [], "categories": []}
    (tmp_path / "df.json").write_text(json.dumps(listed))
    assert build_dataset(paired_train_cfg(root, df_ann=str(tmp_path / "df.json"))).df_filenames == ["img_000.jpg"]
