"""`lcp infer`: detect objects in images and draw what the detector looked at.

For each image IMG, OUT_DIR gets IMG_STEM.json - {"image", "width", "height", "score_thr",
"detections": [{"class", "score", "bbox": [x1, y1, x2, y2]}, ...]} with the detections at
or above --score-thr - and IMG_STEM.jpg: the image with those boxes, and for an LCP
detector the crux learner's soft mask laid over it as a heat map (red: regions the crux
learner keeps for detection, blue: regions it suppresses). No output may replace an input
image or lie in an input folder. Every input's file type is checked before the model loads,
and the outputs are made in a temporary folder beside OUT_DIR and moved into it once all
images are done, so a failed run leaves OUT_DIR as it was and its rerun is not refused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import warnings
from pathlib import Path

from lcp.apis.options import add_cfg_options, parse_cfg_options
from lcp.errors import LCPError

HELP = "detect objects in images; write json detections and pictures with boxes and the crux heat map"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="mmdet config file the checkpoint was trained with")
    parser.add_argument("checkpoint", help="checkpoint file (.pth)")
    parser.add_argument("images", nargs="+", help="image files, or folders whose images are all used")
    parser.add_argument("--out-dir", required=True, help="folder for the json and picture of each image")
    parser.add_argument("--score-thr", type=float, default=0.3, help="lowest score kept (default 0.3)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs in --out-dir")
    add_cfg_options(parser)
    parser.add_argument("--gpu-id", type=int, default=0, help="GPU to use when there is one (default 0)")


def collect_images(items: list[str]) -> list[Path]:
    import cv2

    from lcp.datasets.checks import list_images

    images: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            images += [path / name for name in list_images(item, "image folder")]
        elif path.is_file():
            if not cv2.haveImageReader(str(path)):
                raise LCPError(f"{item}: not an image file OpenCV can read")
            images.append(path)
        else:
            raise LCPError(f"{item}: image does not exist")
    by_stem: dict[str, Path] = {}
    for image in images:
        if image.stem in by_stem:
            raise LCPError(f"{image}: has the same name as {by_stem[image.stem]}; their outputs would collide")
        by_stem[image.stem] = image
    return images


def heat_map_overlay(image, mask, alpha: float = 0.45):
    """The BGR image with a [0, 1] mask of the same height/width blended over it as a JET heat map."""
    import cv2
    import numpy as np

    heat = cv2.applyColorMap(np.clip(mask * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(image, 1 - alpha, heat, alpha, 0)


def crux_mask_for_image(detector, img_tensor, img_meta):
    """The crux learner's mask on the network input, cropped and resized to the original image."""
    import cv2
    import torch

    with torch.no_grad():
        mask = detector.crux_learner.mask(img_tensor)[0, 0].float().cpu().numpy()
    height, width = img_meta["img_shape"][:2]
    mask = mask[:height, :width]
    if img_meta.get("flip"):
        direction = img_meta.get("flip_direction", "horizontal")
        mask = mask[:, ::-1] if direction == "horizontal" else mask[::-1, :]
    ori_height, ori_width = img_meta["ori_shape"][:2]
    return cv2.resize(mask.copy(), (ori_width, ori_height), interpolation=cv2.INTER_LINEAR)


def box_style(image) -> dict:
    """Line thickness and font size for boxes drawn on `image` (mmdet's defaults suit ~1333x800)."""
    small = min(image.shape[:2]) < 400
    return {"thickness": 1 if small else 2, "font_size": 7 if small else 13}


def detections_above(result, class_names, score_thr: float) -> list[dict]:
    bbox_result = result[0] if isinstance(result, tuple) else result
    detections = []
    for label, boxes in enumerate(bbox_result):
        for x1, y1, x2, y2, score in boxes.tolist():
            if score >= score_thr:
                detections.append(dict(**{"class": class_names[label]}, score=round(score, 4),
                                       bbox=[round(v, 2) for v in (x1, y1, x2, y2)]))
    return sorted(detections, key=lambda d: -d["score"])


def main(args: argparse.Namespace) -> int:
    from mmdet.datasets import replace_ImageToTensor
    from mmdet.datasets.pipelines import Compose

    from lcp.apis.compat import accept_gpu_ids_in_mmcv_scatter
    from lcp.apis.config import load_config
    from lcp.apis.options import select_device
    from lcp.io import check_outside_sources, temp_folder, write_json
    from lcp.progress import progress
    from lcp.tools.test import build_test_model, checkpoint_classes

    if not 0 <= args.score_thr <= 1:
        raise LCPError(f"--score-thr {args.score_thr}: must be between 0 and 1")
    images = collect_images(args.images)
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise LCPError(f"{out_dir}: exists and is not a folder")
    outputs = [f"{image.stem}{suffix}" for image in images for suffix in (".json", ".jpg")]
    for name in outputs:
        check_outside_sources(out_dir / name, args.images)
        if not args.overwrite and (out_dir / name).exists():
            raise LCPError(f"{out_dir / name}: already exists; remove it or pass --overwrite")

    cfg = load_config(args.config, parse_cfg_options(args.cfg_options))
    accept_gpu_ids_in_mmcv_scatter()
    device = select_device(args.gpu_id)
    detector = build_test_model(cfg, args.checkpoint)
    class_names = checkpoint_classes(args.checkpoint) or tuple(cfg.get("classes") or ())
    if len(class_names) != detector.roi_head.bbox_head[-1].num_classes:
        raise LCPError(f"{args.checkpoint}: no class names in the checkpoint, and the config's classes "
                       f"{list(class_names)} do not fit its {detector.roi_head.bbox_head[-1].num_classes} classes")
    detector.CLASSES = class_names
    detector.cfg = cfg
    detector.to("cuda" if device == "cuda" else "cpu").eval()
    with warnings.catch_warnings():  # mmdet warns that it swaps ImageToTensor for batching; wanted here
        warnings.simplefilter("ignore", UserWarning)
        pipeline = Compose(replace_ImageToTensor(cfg.data.test.pipeline))

    staging = temp_folder(out_dir)
    try:
        for image_path in progress(images, desc="infer", unit="image"):
            picture, record = infer_image(image_path, detector, pipeline, device, class_names, args)
            (staging / f"{image_path.stem}.jpg").write_bytes(picture)
            write_json(staging / f"{image_path.stem}.json", record)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in outputs:
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"{len(images)} images -> {out_dir}")
    return 0


def infer_image(image_path: Path, detector, pipeline, device: str, class_names, args) -> tuple[bytes, dict]:
    """The output picture (JPEG bytes) and the json record of one image."""
    import cv2
    import numpy as np
    import torch
    from mmcv.parallel import collate, scatter
    from mmdet.core.visualization import imshow_det_bboxes

    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        raise LCPError(f"{image_path}: cannot read the image")
    data = collate([pipeline(dict(img_info=dict(filename=str(image_path)), img_prefix=None))],
                   samples_per_gpu=1)
    data["img_metas"] = [metas.data[0] for metas in data["img_metas"]]
    data["img"] = [img.data[0] for img in data["img"]]
    if device == "cuda":
        data = scatter(data, [args.gpu_id])[0]
    with torch.no_grad():
        result = detector(return_loss=False, rescale=True, **data)[0]
    detections = detections_above(result, class_names, args.score_thr)

    picture = image
    if hasattr(detector, "crux_learner"):
        picture = heat_map_overlay(image, crux_mask_for_image(detector, data["img"][0], data["img_metas"][0][0]))
    if detections:
        bboxes = np.array([d["bbox"] + [d["score"]] for d in detections], dtype=np.float32)
        labels = np.array([class_names.index(d["class"]) for d in detections], dtype=np.int64)
        picture = imshow_det_bboxes(picture.copy(), bboxes, labels, class_names=list(class_names),
                                    score_thr=0, show=False, out_file=None, **box_style(image))
    ok, encoded = cv2.imencode(".jpg", picture)
    if not ok:
        raise LCPError(f"{image_path}: could not encode the output picture")
    return encoded.tobytes(), dict(image=str(image_path), width=image.shape[1], height=image.shape[0],
                                   score_thr=args.score_thr, detections=detections)
