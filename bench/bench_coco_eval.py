"""Time of COCO bbox evaluation (pycocotools' COCOeval, as `lcp test --eval bbox` runs it) on a
large synthetic result set.

Generates ground truth for --images images (8 classes, ~7 boxes each) and 100 detections
per image (ground-truth boxes jittered by various amounts, plus false positives, random
scores), then times loadRes, evaluate, accumulate and summarize with the settings of
lcp.apis.evaluation (maxDets 100/300/1000). If faster-coco-eval is installed, it is timed
on the same data and its 12 summary numbers are compared with pycocotools': it is only
worth using if they match.

    python bench/bench_coco_eval.py [--images 5000]
    python bench/bench_coco_eval.py --tiny     # 50 images, in seconds
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import io
import sys
import time

import numpy as np

NUM_CLASSES = 8


def synthetic_coco(num_images: int, seed: int = 0, width: int = 2048, height: int = 1024):
    """(ground truth as a COCO dict, detections as a loadRes list)."""
    rng = np.random.default_rng(seed)
    images, annotations, detections = [], [], []
    for image_id in range(1, num_images + 1):
        images.append(dict(id=image_id, file_name=f"{image_id:06d}.jpg", width=width, height=height))
        gts = []
        for _ in range(int(rng.integers(1, 14))):
            w, h = rng.uniform(8, width / 3), rng.uniform(8, height / 3)
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            category = int(rng.integers(1, NUM_CLASSES + 1))
            gts.append((x, y, w, h, category))
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=category,
                    bbox=[x, y, w, h],
                    area=w * h,
                    iscrowd=0,
                )
            )
        for _ in range(100):
            if gts and rng.random() < 0.5:
                x, y, w, h, category = gts[int(rng.integers(len(gts)))]
                jitter = rng.uniform(0.0, 0.4)
                x, y = x + rng.normal(0, jitter * w / 2), y + rng.normal(0, jitter * h / 2)
                w, h = w * np.exp(rng.normal(0, jitter)), h * np.exp(rng.normal(0, jitter))
                if rng.random() < 0.1:
                    category = int(rng.integers(1, NUM_CLASSES + 1))
            else:
                w, h = rng.uniform(8, width / 3), rng.uniform(8, height / 3)
                x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
                category = int(rng.integers(1, NUM_CLASSES + 1))
            detections.append(
                dict(
                    image_id=image_id,
                    category_id=category,
                    score=float(rng.random()),
                    bbox=[float(x), float(y), float(max(w, 1)), float(max(h, 1))],
                )
            )
    categories = [dict(id=i, name=f"class_{i}") for i in range(1, NUM_CLASSES + 1)]
    return dict(images=images, annotations=annotations, categories=categories), detections


def run_eval(coco_cls, eval_cls, ground_truth, detections):
    """(summary stats, seconds per phase) of one bbox evaluation."""
    times = {}
    with contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        coco_gt = coco_cls()
        coco_gt.dataset = copy.deepcopy(ground_truth)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(detections))
        times["load"] = time.perf_counter() - start
        evaluator = eval_cls(coco_gt, coco_dt, "bbox")
        evaluator.params.maxDets = [100, 300, 1000]
        for phase in ("evaluate", "accumulate", "summarize"):
            start = time.perf_counter()
            getattr(evaluator, phase)()
            times[phase] = time.perf_counter() - start
    return np.asarray(evaluator.stats, dtype=float), times


def report(name, times):
    total = sum(times.values())
    phases = "  ".join(f"{phase} {seconds:6.2f}" for phase, seconds in times.items())
    print(f"{name:18} {phases}  total {total:6.2f} s")
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="50 images")
    parser.add_argument("--images", type=int, help="images in the result set (default 5000; 50 with --tiny)")
    args = parser.parse_args(argv)
    num_images = args.images or (50 if args.tiny else 5000)

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    start = time.perf_counter()
    ground_truth, detections = synthetic_coco(num_images)
    print(
        f"{num_images} images, {len(ground_truth['annotations'])} ground-truth boxes, {len(detections)} "
        f"detections ({time.perf_counter() - start:.1f} s to generate)"
    )
    stats, times = run_eval(COCO, COCOeval, ground_truth, detections)
    baseline = report("pycocotools", times)
    print(f"{'':18} AP {100 * stats[0]:.2f}  AP50 {100 * stats[1]:.2f}  AP75 {100 * stats[2]:.2f}")

    if importlib.util.find_spec("faster_coco_eval") is None:
        print("faster-coco-eval: not installed, skipped")
        return 0
    from faster_coco_eval import COCO as FastCOCO
    from faster_coco_eval import COCOeval_faster

    fast_stats, fast_times = run_eval(FastCOCO, COCOeval_faster, ground_truth, detections)
    fast_total = report("faster-coco-eval", fast_times)
    difference = float(np.max(np.abs(fast_stats[: len(stats)] - stats)))
    verdict = "matches pycocotools" if difference < 1e-4 else "DIFFERS from pycocotools: do not use it"
    print(
        f"faster-coco-eval: {baseline / fast_total:.1f}x faster, largest summary difference {difference:.2e}: {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
