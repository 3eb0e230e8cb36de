"""A trained detector on images: building it from a config and checkpoint, its detections above a
score as records, and pictures of them (boxes, and an LCP detector's crux mask as a heat map).

`lcp test`, `lcp infer`, `lcp heatmaps` and the report's sample detections share these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from lcp.errors import LCPError


def init_detector(config, checkpoint: str | None = None, device: str | None = None, cfg_options=None):
    """mmdet.apis.init_detector for this project's configs: a config file is read as the `lcp`
    tools read it (checked overrides first, then its ${...} references resolved), which mmdet's
    init_detector does not do. The result works with mmdet's inference_detector.

    The checkpoint loads as `lcp test` / `lcp infer` load it (lcp.models.checkpoint, strict): one
    of another architecture, another class count, or a plain Cascade R-CNN one for an LCP config
    (its crux and catch-up learners would stay random) is an LCPError, where mmcv's loader only
    printed the mismatch. Class names come from the checkpoint's meta, else the config's
    `classes` (mmdet's falls back to COCO's 80 names). `checkpoint`: a file on this machine, not
    a URL. `device` None: the GPU when one is visible, else the CPU."""
    import torch
    from mmdet.apis import init_detector as mmdet_init_detector

    from lcp.apis.config import load_config

    if not hasattr(config, "_cfg_dict"):
        config, cfg_options = load_config(config, cfg_options), None
    if device is None:
        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    if checkpoint is None:
        return mmdet_init_detector(config, None, device=device, cfg_options=cfg_options)
    if "://" in str(checkpoint):  # mmcv's loader downloaded; lcp reads what is on this machine
        raise LCPError(f"{checkpoint}: init_detector loads a checkpoint file; download it, then pass its path")
    if cfg_options:
        config.merge_from_dict(cfg_options)
    model = build_test_model(config, checkpoint)
    model.cfg = config  # what mmdet's inference_detector reads the test pipeline from
    model.CLASSES = model_class_names(model, checkpoint, config)
    return model.to(device).eval()


def build_test_model(cfg, checkpoint: str, fp16: bool = False):
    """The config's detector with the checkpoint's weights (strict: same architecture only)."""
    from lcp.apis.config import build_model
    from lcp.models.checkpoint import load_lcp_checkpoint

    if not Path(checkpoint).is_file():
        raise LCPError(f"{checkpoint}: checkpoint file does not exist")
    cfg.model.pretrained = None
    cfg.model.train_cfg = None
    model = build_model(cfg, cfg.filename, test_cfg=cfg.get("test_cfg"))
    if fp16:
        from mmcv.runner import wrap_fp16_model

        wrap_fp16_model(model)
    load_lcp_checkpoint(model, checkpoint, strict=True)
    return model


def checkpoint_classes(checkpoint: str) -> tuple[str, ...] | None:
    """The class names mmdet stored in the checkpoint's meta, if any: CLASSES (mmdet 2.x), or
    dataset_meta.classes (mmdet 3.x, as its init_detector reads them)."""
    from lcp.models.checkpoint import checkpoint_meta

    try:
        meta = checkpoint_meta(checkpoint)
    except LCPError:  # load_lcp_checkpoint has already named any problem with the file
        return None
    dataset_meta = meta.get("dataset_meta")
    classes = meta.get("CLASSES") or (dataset_meta.get("classes") if isinstance(dataset_meta, Mapping) else None)
    return tuple(classes) if classes else None


def model_class_names(detector, checkpoint: str, cfg) -> tuple[str, ...]:
    """The class names of a built detector: the checkpoint's (mmdet keeps them in its meta), else
    the config's; an LCPError naming where they came from when they do not fit its classes."""
    from_checkpoint = checkpoint_classes(checkpoint)
    names = from_checkpoint or tuple(cfg.get("classes") or ())
    count = detector.roi_head.bbox_head[-1].num_classes
    if len(names) != count:
        where = (
            f"the checkpoint's class names {list(names)}"
            if from_checkpoint
            else (f"no class names in the checkpoint, and the config's classes {list(names)}")
        )
        raise LCPError(f"{checkpoint}: {where} do not fit the model's {count} classes")
    return tuple(names)


def collect_images(items: list[str]) -> list[Path]:
    """Image files, and every image of the folders among `items`; names whose outputs would collide refused."""
    import sys

    import cv2

    from lcp.data.images import image_file_problem, is_image_name, list_images

    images: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = [path / image.name for image in list_images(item, "image folder")]
            given = set(found)
            others = sorted(  # images OpenCV reads but a folder does not give (.bmp, .tif), and subfolders
                entry.name
                for entry in path.iterdir()
                if entry not in given
                and not entry.name.startswith(".")
                and (entry.is_dir() or cv2.haveImageReader(str(entry)))
            )
            if others:
                print(
                    f"{item}: {len(others)} entr{'ies' if len(others) > 1 else 'y'} left out, not a .jpg/.jpeg/.png "
                    f"image directly inside the folder (e.g. {others[0]}); name such files one by one",
                    file=sys.stderr,
                )
            images += found
        elif path.is_file():
            if not cv2.haveImageReader(str(path)):
                raise LCPError(f"{item}: not an image file OpenCV can read")
            images.append(path)
        else:
            raise LCPError(f"{item}: image does not exist")
    for image in images:  # before the model loads: a truncated JPEG decodes in OpenCV but not in mmcv
        if is_image_name(image.name):
            problem = image_file_problem(image)
        else:  # a .bmp or .tif named on its own: no end marker to check, it must decode
            problem = None if cv2.imread(str(image), cv2.IMREAD_COLOR) is not None else "cannot be decoded"
        if problem is not None:
            raise LCPError(f"{image}: {problem}")
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


LEGIBLE_SIDE = 400  # a picture's shorter side under which `lcp infer` and the report draw it enlarged
MAX_PICTURE_SIDE = 8192  # no side enlarged past this (JPEG holds 65535)


def box_style(image) -> dict:
    """Line thickness and font size for boxes drawn on `image` (mmdet's defaults suit ~1333x800)."""
    small = min(image.shape[:2]) < LEGIBLE_SIDE
    if small:
        return {"thickness": 1, "font_size": 7}
    scale = max(1.0, max(image.shape[:2]) / 1333)  # a 6000 px photo gets labels one can read whole
    return {"thickness": round(2 * scale), "font_size": round(13 * scale)}


def detections_above(result, class_names, score_thr: float) -> list[dict]:
    bbox_result = result[0] if isinstance(result, tuple) else result
    detections = []
    for label, boxes in enumerate(bbox_result):
        for x1, y1, x2, y2, score in boxes.tolist():
            if score >= score_thr:
                detections.append(
                    dict(
                        **{"class": class_names[label]},
                        score=round(score, 4),
                        bbox=[round(v, 2) for v in (x1, y1, x2, y2)],
                    )
                )
    return sorted(detections, key=lambda d: -d["score"])


def infer_image(
    image_path: Path, detector, pipeline, device: str, class_names, score_thr: float, gpu_id: int = 0
) -> tuple[bytes, dict]:
    """The output picture (JPEG bytes) and the json record of one image: the detections at or above
    `score_thr`, drawn over the image (and over an LCP detector's crux mask). A picture under
    LEGIBLE_SIDE px is drawn enlarged by a whole factor (its pixels repeated), so that its labels
    can be read; the record keeps the image's own size and coordinates."""
    import cv2
    import numpy as np
    import torch
    from mmcv.parallel import collate, scatter
    from mmdet.core.visualization import imshow_det_bboxes

    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        raise LCPError(f"{image_path}: cannot read the image")
    data = collate([pipeline(dict(img_info=dict(filename=str(image_path)), img_prefix=None))], samples_per_gpu=1)
    data["img_metas"] = [metas.data[0] for metas in data["img_metas"]]
    data["img"] = [img.data[0] for img in data["img"]]
    if device == "cuda":
        data = scatter(data, [gpu_id])[0]
    with torch.no_grad():
        result = detector(return_loss=False, rescale=True, **data)[0]
    detections = detections_above(result, class_names, score_thr)

    picture = image
    if hasattr(detector, "crux_learner"):
        picture = heat_map_overlay(image, crux_mask_for_image(detector, data["img"][0], data["img_metas"][0][0]))
    factor = math.ceil(LEGIBLE_SIDE / min(image.shape[:2])) if min(image.shape[:2]) < LEGIBLE_SIDE else 1
    factor = max(1, min(factor, MAX_PICTURE_SIDE // max(image.shape[:2])))  # a long strip stays encodable
    if factor > 1:
        picture = cv2.resize(picture, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
    if detections:
        bboxes = np.array([[*(v * factor for v in d["bbox"]), d["score"]] for d in detections], dtype=np.float32)
        labels = np.array([class_names.index(d["class"]) for d in detections], dtype=np.int64)
        picture = imshow_det_bboxes(
            picture.copy(),
            bboxes,
            labels,
            class_names=list(class_names),
            score_thr=0,
            show=False,
            out_file=None,
            **box_style(picture),
        )
    ok, encoded = cv2.imencode(".jpg", picture)
    if not ok:
        raise LCPError(f"{image_path}: could not encode the output picture")
    return encoded.tobytes(), dict(
        image=str(image_path), width=image.shape[1], height=image.shape[0], score_thr=score_thr, detections=detections
    )


def draw_detections(detector, dataset, results: list, folder: Path, score_thr: float) -> None:
    """Each test image with its detections above `score_thr` (mmdet's show_result), into `folder`;
    the pictures keep the images' file names."""
    import mmcv

    from lcp.progress import progress

    palette = getattr(dataset, "PALETTE", None)
    for info, result in progress(list(zip(dataset.data_infos, results, strict=True)), desc="show", unit="img"):
        image = mmcv.imread(str(Path(dataset.img_prefix or "") / info["filename"]))
        detector.show_result(
            image,
            result,
            score_thr=score_thr,
            bbox_color=palette,
            text_color=palette,
            show=False,
            out_file=str(folder / info["filename"]),
            **box_style(image),
        )


def infer_images(
    config: str,
    checkpoint: str,
    items: list[str],
    out_dir: str | Path,
    score_thr: float = 0.3,
    overwrite: bool = False,
    cfg_options: dict | None = None,
    gpu_id: int = 0,
) -> list[Path]:
    """`lcp infer`: IMG_STEM.json and IMG_STEM.jpg in `out_dir` for each image of `items` (files or
    folders), made in a temporary folder and moved into `out_dir` once all are done. Returns the images."""
    import os
    import shutil
    import warnings

    from mmdet.datasets import replace_ImageToTensor
    from mmdet.datasets.pipelines import Compose

    from lcp.apis.compat import accept_gpu_ids_in_mmcv_scatter
    from lcp.apis.config import load_config
    from lcp.apis.options import select_device
    from lcp.io import check_outside_sources, release, temp_folder, write_json
    from lcp.progress import progress

    if not 0 <= score_thr <= 1:
        raise LCPError(f"--score-thr {score_thr}: must be between 0 and 1")
    images = collect_images(items)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise LCPError(f"{out_dir}: exists and is not a folder")
    outputs = [f"{image.stem}{suffix}" for image in images for suffix in (".json", ".jpg")]
    # nor into the folder of an image named on its own: x.jpg there may be the user's photo
    sources = [*items, *(str(Path(item).parent) for item in items if Path(item).is_file())]
    for name in outputs:
        check_outside_sources(out_dir / name, sources)
        if (out_dir / name).is_dir():  # found only at the end, when half the files were moved in
            raise LCPError(f"{out_dir / name}: is a folder, not a file")
        if not overwrite and (out_dir / name).exists():
            raise LCPError(f"{out_dir / name}: already exists; remove it or pass --overwrite")

    cfg = load_config(config, cfg_options or {})
    accept_gpu_ids_in_mmcv_scatter()
    device = select_device(gpu_id)
    detector = build_test_model(cfg, checkpoint)
    class_names = model_class_names(detector, checkpoint, cfg)
    detector.CLASSES = class_names
    detector.cfg = cfg
    detector.to("cuda" if device == "cuda" else "cpu").eval()
    with warnings.catch_warnings():  # mmdet warns that it swaps ImageToTensor for batching; wanted here
        warnings.simplefilter("ignore", UserWarning)
        pipeline = Compose(replace_ImageToTensor(cfg.data.test.pipeline))

    staging = temp_folder(out_dir)
    try:
        for image_path in progress(images, desc="infer", unit="image"):
            picture, record = infer_image(image_path, detector, pipeline, device, class_names, score_thr, gpu_id)
            (staging / f"{image_path.stem}.jpg").write_bytes(picture)
            write_json(staging / f"{image_path.stem}.json", record)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in outputs:
            os.replace(staging / name, out_dir / name)
    finally:
        release(staging)
        shutil.rmtree(staging, ignore_errors=True)
    return images
