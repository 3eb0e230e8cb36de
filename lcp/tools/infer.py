"""Compatibility until lcp/report/detections.py calls lcp.apis.inference.infer_image with score_thr and
gpu_id (`lcp infer` is lcp.commands.infer)."""

from lcp.apis.inference import infer_image as _infer_image


def infer_image(image_path, detector, pipeline, device, class_names, options):
    return _infer_image(image_path, detector, pipeline, device, class_names, options.score_thr, options.gpu_id)
