"""The test set a report picture is drawn from: the config's, checked to hold enough images."""

from __future__ import annotations

from lcp.errors import LCPError


def test_set_with(cfg, count: int, config_path: str, asked: str):
    """The config's test data set (mmdet's, test mode) with at least `count` images; `asked`
    names the request in the error, e.g. "--count 4"."""
    from mmdet.datasets import build_dataset

    from lcp.apis.config import built_from_settings
    from lcp.apis.streams import annotation_loading_unprinted
    from lcp.datasets.config_checks import check_dataset_cfg

    test_cfg = cfg.data.test
    test_cfg.test_mode = True
    check_dataset_cfg(test_cfg)
    with annotation_loading_unprinted(), built_from_settings(config_path, "test data set"):
        dataset = build_dataset(test_cfg)
    if len(dataset) < count:
        raise LCPError(
            f"{config_path}: the test set has {len(dataset)} image{'s' * (len(dataset) != 1)}, fewer than {asked}"
        )
    return dataset


def test_set_files(dataset) -> list[str]:
    """What a picture drawn from `dataset` may not be written over or into: its annotation
    file and image folder."""
    return [path for path in (dataset.ann_file, dataset.img_prefix) if path]
