"""COCO bbox metrics of `lcp test` agree with mmdet's own evaluation and give per-class AP;
auto-resume skips a checkpoint truncated by a killed run."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.datasets import build_dataset

from lcp.apis.config import load_config
from lcp.apis.evaluation import coco_bbox_metrics
from lcp.apis.resume import find_resume_checkpoint
from lcp.cli import main as lcp

REPO = Path(__file__).resolve().parents[2]
LCP_TINY = REPO / "config" / "mmdet" / "lcp_tiny_demo.py"


@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval") / "demo"
    assert lcp(["data", "demo", "--out", str(root), "--num-images", "20", "--no-progress"]) == 0
    cfg = load_config(LCP_TINY, {"data_root": f"{root}/"})
    test_cfg = copy.deepcopy(cfg.data.test)
    test_cfg.test_mode = True
    return build_dataset(test_cfg)


def detections_from_ground_truth(dataset, shift_class=None, drop_class=None):
    """Per image, per class (n, 5) arrays [x1, y1, x2, y2, score] made from the annotations."""
    results = []
    for index in range(len(dataset)):
        ann = dataset.get_ann_info(index)
        per_class = []
        for label in range(len(dataset.CLASSES)):
            boxes = ann["bboxes"][ann["labels"] == label].copy()
            if label == shift_class:
                boxes[:, [0, 2]] += (boxes[:, 2] - boxes[:, 0])[:, None] * 0.6
            if label == drop_class:
                boxes = boxes[:0]
            scores = np.linspace(0.9, 0.5, len(boxes), dtype=np.float32)[:, None]
            per_class.append(np.hstack([boxes, scores]).astype(np.float32))
        results.append(per_class)
    return results


def test_perfect_detections_score_one(test_set):
    metrics = coco_bbox_metrics(test_set, detections_from_ground_truth(test_set))
    assert metrics["bbox_mAP"] == pytest.approx(1.0)
    assert metrics["bbox_mAP_50"] == pytest.approx(1.0)
    assert metrics["classwise"] == {name: pytest.approx(1.0) for name in test_set.CLASSES}


def test_metrics_equal_mmdets_and_each_class_is_scored_apart(test_set):
    circle, square = test_set.CLASSES.index("circle"), test_set.CLASSES.index("square")
    results = detections_from_ground_truth(test_set, shift_class=circle, drop_class=square)
    metrics = coco_bbox_metrics(test_set, results)
    reference = test_set.evaluate(results, metric="bbox")
    for key in ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_75"):
        assert metrics[key] == pytest.approx(reference[key], abs=5e-4)
    assert metrics["classwise"]["square"] == 0.0
    assert metrics["classwise"]["triangle"] == pytest.approx(1.0)
    assert 0.0 <= metrics["classwise"]["circle"] < 0.5  # boxes shifted by 60% of their width
    assert metrics["bbox_mAP"] == pytest.approx(np.mean(list(metrics["classwise"].values())))


def test_no_detections_at_all_score_as_cocoeval_scores_a_useless_one(test_set):
    """0 where there is ground truth to miss, None where there is none (the demo has no large
    boxes): the same as COCOeval's figures for one detection that matches nothing."""
    empty = [[np.zeros((0, 5), np.float32) for _ in test_set.CLASSES] for _ in range(len(test_set))]
    metrics = coco_bbox_metrics(test_set, empty)
    useless = copy.deepcopy(empty)
    useless[0][0] = np.array([[0, 0, 1, 1, 0.9]], np.float32)
    assert metrics == coco_bbox_metrics(test_set, useless)
    assert metrics["bbox_mAP"] == 0.0 and metrics["bbox_mAP_l"] is None


def test_no_detections_follow_cocoeval_for_iou_thresholds_and_ignore_flags(test_set):
    """The shortcut for no detections said AP50 0 under iou_thrs=[0.6] (COCOeval: none) and
    treated `ignore: 1` as ignored, which pycocotools overwrites with iscrowd."""
    empty = [[np.zeros((0, 5), np.float32) for _ in test_set.CLASSES] for _ in range(len(test_set))]
    useless = copy.deepcopy(empty)
    useless[0][0] = np.array([[0, 0, 1, 1, 0.9]], np.float32)
    at_06 = coco_bbox_metrics(test_set, empty, iou_thrs=[0.6])
    assert at_06 == coco_bbox_metrics(test_set, useless, iou_thrs=[0.6])
    assert at_06["bbox_mAP"] == 0.0 and at_06["bbox_mAP_50"] is None and at_06["bbox_mAP_75"] is None
    ignored = copy.deepcopy(test_set)
    for ann in ignored.coco.dataset["annotations"]:
        ann["ignore"] = 1
    ignored.coco.createIndex()
    assert coco_bbox_metrics(ignored, empty) == coco_bbox_metrics(ignored, useless)


def _edited(dataset, edit):
    edited = copy.deepcopy(dataset)
    for index, ann in enumerate(edited.coco.dataset["annotations"]):
        edit(index, ann)
    edited.coco.createIndex()
    return edited


@pytest.mark.parametrize(
    "edit",
    [
        lambda index, ann: ann.update(id=0) if index == 3 else None,
        lambda index, ann: ann.update(id=index),  # 0, 1, ...
        lambda index, ann: ann.update(id=f"box{index}"),
    ],
    ids=["one-id-0", "ids-from-0", "string-ids"],
)
def test_perfect_detections_score_one_whatever_the_annotation_ids(test_set, edit):
    """COCOeval takes a matched box's id of 0 for no match: AP 0.94 for ground truth as detections
    with one id 0; string ids failed in COCOeval after the whole test pass."""
    edited = _edited(test_set, edit)
    metrics = coco_bbox_metrics(edited, detections_from_ground_truth(edited))
    assert metrics["bbox_mAP"] == pytest.approx(1.0)
    assert metrics["classwise"] == {name: pytest.approx(1.0) for name in test_set.CLASSES}
    assert edited.coco.dataset["annotations"][3]["id"] != 4  # the user's file is left as it is


def test_boxes_flagged_ignore_need_not_be_found(test_set):
    """pycocotools replaces `ignore` by `iscrowd`: a box mmdet's training leaves out had to be
    detected, and the ground truth less those boxes scored 0.8 instead of 1."""
    edited = _edited(test_set, lambda index, ann: ann.update(ignore=1) if index % 3 == 0 else None)
    results = detections_from_ground_truth(edited)  # mmdet's get_ann_info leaves ignored boxes out
    detected = sum(len(boxes) for image in results for boxes in image)
    assert 0 < detected < len(edited.coco.dataset["annotations"])
    metrics = coco_bbox_metrics(edited, results)
    assert metrics["bbox_mAP"] == pytest.approx(1.0)
    with_ignored = _edited(test_set, lambda index, ann: None)
    assert coco_bbox_metrics(with_ignored, results)["bbox_mAP"] < 0.9  # without the flags those boxes are missed


def test_classwise_ap_follows_the_category_ids_not_their_order_in_the_file(test_set):
    """COCOeval sorts category ids: with ids 3, 1, 2 for circle, square, triangle, perfect circle
    detections were reported as triangle's AP."""
    renumbered = copy.deepcopy(test_set)
    new_ids = dict(zip(renumbered.cat_ids, [3, 1, 2], strict=True))
    for category in renumbered.coco.dataset["categories"]:
        category["id"] = new_ids[category["id"]]
    for ann in renumbered.coco.dataset["annotations"]:
        ann["category_id"] = new_ids[ann["category_id"]]
    renumbered.coco.createIndex()
    renumbered.cat_ids = [new_ids[i] for i in renumbered.cat_ids]
    renumbered.cat2label = {cat_id: label for label, cat_id in enumerate(renumbered.cat_ids)}
    circle = test_set.CLASSES.index("circle")
    only_circles = [
        [boxes if label == circle else boxes[:0] for label, boxes in enumerate(image)]
        for image in detections_from_ground_truth(renumbered)
    ]
    classwise = coco_bbox_metrics(renumbered, only_circles)["classwise"]
    assert classwise == {"circle": pytest.approx(1.0), "square": 0.0, "triangle": 0.0}


def test_auto_resume_skips_a_truncated_checkpoint(tmp_path):
    assert find_resume_checkpoint(tmp_path) is None
    torch.save({"state_dict": {"w": torch.ones(1000)}, "meta": {"epoch": 1}}, tmp_path / "epoch_1.pth")
    torch.save({"state_dict": {"w": torch.ones(1000)}, "meta": {"epoch": 2}}, tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "epoch_2.pth").write_bytes(data[: len(data) // 2])  # killed while saving
    os.symlink("epoch_2.pth", tmp_path / "latest.pth")
    assert find_resume_checkpoint(tmp_path) == tmp_path / "epoch_1.pth"
    (tmp_path / "epoch_2.pth").write_bytes(data)
    (tmp_path / "epoch_10.pth").write_bytes(data)
    assert find_resume_checkpoint(tmp_path) == tmp_path / "epoch_10.pth"
