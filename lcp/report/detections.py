"""Sample detections of the report: a detector's boxes on the first images of its config's test set.

The pictures are `lcp infer`'s (boxes with score >= 0.3, and an LCP detector's crux mask as a
heat map), written to the given paths in data-set order, so every method of a scene is drawn
on the same images.
"""

from __future__ import annotations

import os
from pathlib import Path

from lcp.errors import LCPError
from lcp.report.test_set import test_set_files, test_set_with

SCORE_THR = 0.3


def first_test_images(cfg, count: int, config_path: str) -> tuple[list[Path], list[str]]:
    """The first `count` images of the config's test set, in data-set order, and the set's files."""
    dataset = test_set_with(cfg, count, config_path, f"the {count} pictures asked for")
    images = [Path(dataset.img_prefix or "") / dataset.data_infos[index]["filename"] for index in range(count)]
    return images, test_set_files(dataset)


def draw_sample_detections(
    config_path: str,
    checkpoint: str,
    outputs: list[str | os.PathLike],
    cfg_options: dict | None = None,
    gpu_id: int = 0,
) -> None:
    """Write one JPEG picture per path in `outputs`: the detector's boxes on the test images."""
    import warnings

    from lcp.deferred_imports import import_mmdet

    import_mmdet()  # before mmdet's first import, as `lcp test` does (lcp.cli)
    from mmdet.datasets import replace_ImageToTensor
    from mmdet.datasets.pipelines import Compose

    from lcp.apis.compat import accept_gpu_ids_in_mmcv_scatter
    from lcp.apis.config import load_config
    from lcp.apis.inference import build_test_model, infer_image, model_class_names
    from lcp.apis.options import select_device
    from lcp.io import check_outside_sources, write_files

    for output in outputs:
        if Path(output).suffix.lower() not in (".jpg", ".jpeg"):
            raise LCPError(f"{output}: sample detections are JPEG pictures; name the file .jpg")
        check_outside_sources(output, [config_path, checkpoint])
    cfg = load_config(config_path, cfg_options or {})
    images, test_files = first_test_images(cfg, len(outputs), config_path)
    for output in outputs:  # not into the test set, which a later run would read back
        check_outside_sources(output, test_files)
    accept_gpu_ids_in_mmcv_scatter()
    device = select_device(gpu_id)
    detector = build_test_model(cfg, checkpoint)
    class_names = model_class_names(detector, checkpoint, cfg)
    detector.CLASSES, detector.cfg = class_names, cfg
    detector.to("cuda" if device == "cuda" else "cpu").eval()
    with warnings.catch_warnings():  # mmdet warns that it swaps ImageToTensor for batching; wanted here
        warnings.simplefilter("ignore", UserWarning)
        pipeline = Compose(replace_ImageToTensor(cfg.data.test.pipeline))
    pictures = [infer_image(image, detector, pipeline, device, class_names, SCORE_THR, gpu_id)[0] for image in images]
    write_files(dict(zip(outputs, pictures, strict=True)))
