"""`lcp data demo`: a small built-in scene (clean + foggy shapes) to run everything end to end.

    OUT/clean/demo_000001.jpg ...                 clean, detection-favoured images
    OUT/lowq/demo_000001_foggy_beta_0.04.jpg ...  fog synthesised from clean with the depth below
    OUT/lowq/synthesis.json                       the synthesis sidecar (lcp data synth)
    OUT/depth/demo_000001.png ...                 depth, 16-bit png, metres * 256
    OUT/annotations/{clean,lowq}_{train,test}.json  the same boxes, split by seed
    OUT/demo.json                                 seed, classes, counts, synthesis parameters

The same seed gives byte-identical files. The folder appears complete or not at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lcp.data.coco import build_coco, categories_for, subset, write_coco
from lcp.data.degradations.fog import Fog
from lcp.data.demo_sizes import NUM_IMAGES, TEST_FRACTION, test_split_size
from lcp.data.depth import DepthSource, encode_depth_png
from lcp.data.images import encode_jpeg
from lcp.data.shapes_scene import CLASSES, FAR_M, HORIZON_RANGE, NEAR_M, OBJECT_MAX_DEPTH_M, render_scene
from lcp.data.synth import SIDECAR_NAME, synthesise_folder
from lcp.errors import LCPError
from lcp.io import atomic_folder, write_json

# At the demo's 3-150 m ground plane, beta 0.04 keeps near objects clear (t ~ 0.8 at 5 m)
# and leaves the farthest ones (30 m) at t ~ 0.3: visibly foggy but still detectable.
DEFAULT_BETA = 0.04
IMAGE_PREFIX = "demo_"


def make_demo(
    out: Path,
    seed: int = 0,
    num_images: int = NUM_IMAGES,
    size: int = 128,
    beta: float = DEFAULT_BETA,
    test_fraction: float = TEST_FRACTION,
    overwrite: bool = False,
    progress: bool = True,
    render=None,
) -> dict:
    """Write the demo scene folder; return the content of its demo.json. `render(size, rng)` draws
    one Scene (default lcp.data.shapes_scene.render_scene; bench/look_alikes.py passes a variant)."""
    from lcp.progress import progress as shown

    if seed < 0:
        raise LCPError(f"--seed: must be >= 0, got {seed}")
    if num_images < 2:
        raise LCPError(f"--num-images: need at least 2 (one train, one test), got {num_images}")
    if size < 32:
        raise LCPError(f"--size: images of at least 32 pixels, got {size}")
    if not 0 < test_fraction < 1:
        raise LCPError(f"--test-fraction: must be above 0 and below 1 (both splits need images), got {test_fraction}")
    fog = Fog(beta=beta)  # refuses a bad --beta before any image is drawn
    categories = categories_for(CLASSES)
    category_ids = {c["name"]: c["id"] for c in categories}
    with atomic_folder(out, overwrite=overwrite) as tmp:
        for folder in ("clean", "depth", "annotations"):
            (tmp / folder).mkdir()
        images, annotations = [], []
        indices = range(1, num_images + 1)
        for index in shown(indices, desc="demo scene") if progress else indices:
            scene = (render or render_scene)(size, np.random.default_rng([seed, index]))
            name = f"{IMAGE_PREFIX}{index:06d}"
            (tmp / "clean" / f"{name}.jpg").write_bytes(encode_jpeg(scene.image))
            (tmp / "depth" / f"{name}.png").write_bytes(encode_depth_png(scene.depth))
            images.append({"id": index, "file_name": f"{name}.jpg", "width": size, "height": size})
            for obj in scene.objects:
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": index,
                        "category_id": category_ids[obj.category],
                        "bbox": obj.bbox,
                        "area": obj.area,
                        "iscrowd": 0,
                        "segmentation": [obj.polygon],
                    }
                )
        coco = build_coco(images, annotations, categories, description=f"lcp demo scene, seed {seed}")
        order = np.random.default_rng(seed).permutation(num_images) + 1
        num_test = test_split_size(num_images, test_fraction)
        splits = {"train": sorted(order[num_test:].tolist()), "test": sorted(order[:num_test].tolist())}
        for split, ids in splits.items():
            write_coco(tmp / "annotations" / f"clean_{split}.json", subset(coco, ids))

        depth = DepthSource.from_folders(NEAR_M, FAR_M, 0.0, depth_dir=str(tmp / "depth"))
        synthesis = synthesise_folder(
            fog,
            tmp / "clean",
            tmp / "lowq",
            depth,
            seed=seed,
            workers=1,
            annotations=[
                (str(tmp / "annotations" / f"clean_{s}.json"), str(tmp / "annotations" / f"lowq_{s}.json"))
                for s in splits
            ],
            quality=95,
            progress=progress,
            depth_dirs=[str(tmp / "depth")],
        )
        per_class = {name: sum(1 for a in annotations if a["category_id"] == cid) for name, cid in category_ids.items()}
        summary = {
            "tool": "lcp data demo",
            "seed": seed,
            "classes": list(CLASSES),
            "image_size": [size, size],
            "counts": {
                "images": num_images,
                "train": len(splits["train"]),
                "test": len(splits["test"]),
                "objects": len(annotations),
                "objects_per_class": per_class,
            },
            "folders": {"clean": "clean", "lowq": "lowq", "depth": "depth", "annotations": "annotations"},
            "scene": {
                "ground_plane_near_m": NEAR_M,
                "far_m": FAR_M,
                "horizon_range": list(HORIZON_RANGE),
                "object_max_depth_m": OBJECT_MAX_DEPTH_M,
                "depth_format": "16-bit png, metres * 256",
            },
            "synthesis": {
                "degradation": synthesis["degradation"],
                "model": synthesis["model"],
                "config": synthesis["config"],
                "sidecar": f"lowq/{SIDECAR_NAME}",
            },
        }
        write_json(tmp / "demo.json", summary)
    return summary
