"""Compatibility: the dataset config checks are lcp.datasets.config_checks, image listing is
lcp.data.images.list_images. Kept until df_paired, infer, train, test, heatmaps and
report.detections import from there."""

from lcp.data.images import list_images as _list_image_paths
from lcp.datasets.config_checks import (  # noqa: F401
    annotation_categories,
    check_annotation_file,
    check_categories,
    check_dataset_cfg,
    read_annotation_file,
)


def list_images(folder: str, what: str = "image folder") -> list[str]:
    """Sorted file names of the images directly inside `folder` (the names of
    lcp.data.images.list_images)."""
    return [path.name for path in _list_image_paths(folder, what)]
