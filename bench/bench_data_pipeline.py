"""Data-loading speed of LCP training: DFPairedDataset with the published paired pipeline.

Writes generated Cityscapes-size images (2048x1024) to a temporary scene - low-quality
training images with a COCO annotation file, and a folder of detection-favoured images -
builds the training set of config/mmdet/lcp_r50_foggy_city.py on it (load both images,
resize both to 1333x800, flip, normalise, pad, bundle) and iterates mmdet's training
data loader (batch 2 per GPU, shuffled) with each --workers value, printing images/s and
the speed-up over 0 workers, all in one run.

    python bench/bench_data_pipeline.py [--images 48] [--workers 0 2 4 8] [--format jpg|png]
    python bench/bench_data_pipeline.py --tiny    # 256x128 images, a few batches, in seconds

One GPU step of LCP crux-mode training at this scale takes the time of a few batches
(bench/bench_lcp_model.py); the loader keeps up when its images/s exceeds the model's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
LCP_CONFIG = REPO / "config" / "mmdet" / "lcp_r50_foggy_city.py"


def synthetic_image(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth random picture with some edges, so it compresses like a photo rather than noise."""
    coarse = rng.integers(0, 256, size=(max(height // 64, 2), max(width // 64, 2), 3), dtype=np.uint8)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(12):
        x1, y1 = int(rng.integers(0, width - 8)), int(rng.integers(0, height - 8))
        x2, y2 = x1 + int(rng.integers(8, width // 4)), y1 + int(rng.integers(8, height // 4))
        cv2.rectangle(img, (x1, y1), (x2, y2), tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
    noise = rng.normal(0, 4, size=img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def write_scene(
    root: Path, classes: list[str], num_images: int, num_df: int, width: int, height: int, fmt: str, seed: int = 0
) -> None:
    """root/lowq/*.{fmt} with root/annotations/lowq_train.json, and root/clean/*.{fmt}."""
    rng = np.random.default_rng(seed)
    (root / "lowq").mkdir(parents=True)
    (root / "clean").mkdir()
    (root / "annotations").mkdir()
    images, annotations = [], []
    for i in range(num_images):
        name = f"lowq_{i:04d}.{fmt}"
        cv2.imwrite(str(root / "lowq" / name), synthetic_image(rng, width, height))
        images.append(dict(id=i + 1, file_name=name, width=width, height=height))
        for _ in range(4):
            w, h = float(rng.uniform(16, width / 4)), float(rng.uniform(16, height / 4))
            x, y = float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h))
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=i + 1,
                    bbox=[x, y, w, h],
                    area=w * h,
                    iscrowd=0,
                    category_id=int(rng.integers(len(classes))) + 1,
                )
            )
    for i in range(num_df):
        cv2.imwrite(str(root / "clean" / f"clean_{i:04d}.{fmt}"), synthetic_image(rng, width, height))
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(classes)]
    (root / "annotations" / "lowq_train.json").write_text(
        json.dumps(dict(images=images, annotations=annotations, categories=categories))
    )


def paired_dataset(root: Path, img_scale: tuple[int, int] | None):
    """The published LCP training set (config's data.train) on the generated scene."""
    from mmdet.datasets import build_dataset

    import lcp.datasets  # noqa: F401  registers DFPairedDataset and its pipeline steps
    import lcp.models  # noqa: F401
    from lcp.apis.config import load_config

    options = dict(
        data_root=f"{root}/",
        train_img_dir="lowq/",
        train_ann="annotations/lowq_train.json",
        df_img_dir="clean/",
        df_ann=None,  # the whole clean folder: this scene has no test split
    )
    if img_scale is not None:
        options["img_scale"] = img_scale
    cfg = load_config(LCP_CONFIG, options)
    dataset = build_dataset(cfg.data.train)
    dataset.set_epoch(0)
    return cfg, dataset


def images_per_second(dataset, workers: int, batch: int, batches: int, seed: int = 0) -> float:
    from mmdet.datasets import build_dataloader

    loader = build_dataloader(
        dataset,
        samples_per_gpu=batch,
        workers_per_gpu=workers,
        num_gpus=1,
        dist=False,
        shuffle=True,
        seed=seed,
        persistent_workers=False,
    )
    iterator = iter(loader)
    first = next(iterator)  # starts the workers; not timed
    assert first["img"].data[0].shape == first["img_df"].data[0].shape
    start = time.perf_counter()
    done = 0
    for _ in range(batches):
        try:
            next(iterator)
        except StopIteration:
            break
        done += 1
    seconds = time.perf_counter() - start
    del iterator
    if done == 0:
        raise SystemExit(f"bench_data_pipeline: too few images for {batches} timed batches; raise --images")
    return done * batch / seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="256x128 images resized to 256x128, a few batches")
    parser.add_argument("--images", type=int, help="low-quality images (default 48; 8 with --tiny)")
    parser.add_argument("--df-images", type=int, default=16, help="detection-favoured images (default 16)")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        help="data-loader workers to compare (default 0 2 4 8 up to the CPU count; 0 1 with --tiny)",
    )
    parser.add_argument("--batch", type=int, default=2, help="images per GPU (default 2)")
    parser.add_argument("--batches", type=int, help="timed batches per worker count (default 20; 3 with --tiny)")
    parser.add_argument("--format", choices=["jpg", "png"], default="jpg", help="image files (default jpg)")
    args = parser.parse_args(argv)
    cpus = os.cpu_count() or 1
    if args.tiny:
        width, height, img_scale = 256, 128, (256, 128)
    else:
        width, height, img_scale = 2048, 1024, None  # the config's own 1333x800
    num_images = args.images or (8 if args.tiny else 48)
    batches = args.batches or (3 if args.tiny else 20)
    workers = args.workers or ([0, 1] if args.tiny else [w for w in (0, 2, 4, 8) if w <= cpus])

    cv2.setNumThreads(0)  # as mmdet's setup_multi_processes does for training (opencv_num_threads=0)
    with tempfile.TemporaryDirectory(prefix="lcp-bench-data-") as tmp:
        root = Path(tmp)
        classes = ["bicycle", "bus", "person", "train", "truck", "motorcycle", "car", "rider"]
        start = time.perf_counter()
        write_scene(root, classes, num_images, args.df_images, width, height, args.format)
        print(
            f"{num_images} low-quality + {args.df_images} detection-favoured {width}x{height} {args.format} "
            f"images written in {time.perf_counter() - start:.1f} s; {cpus} CPUs"
        )
        cfg, dataset = paired_dataset(root, img_scale)
        print(
            f"pipeline: {' -> '.join(step['type'] for step in cfg.data.train.dataset.pipeline)}; "
            f"img_scale {tuple(cfg.img_scale)}, batch {args.batch}, {batches} timed batches"
        )
        print(f"{'workers':>7} {'img/s':>8} {'vs 0 workers':>12}")
        baseline = None
        for count in workers:
            speed = images_per_second(dataset, count, args.batch, batches)
            baseline = baseline or (speed if count == 0 else None)
            ratio = f"{speed / baseline:12.2f}" if baseline else f"{'-':>12}"
            print(f"{count:7d} {speed:8.1f} {ratio}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
