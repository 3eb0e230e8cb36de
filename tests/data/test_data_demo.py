"""`lcp data demo`: the layout the configs read, byte-identical for a seed, atomic, checked clean."""

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lcp.cli import main as lcp

NUM_IMAGES, SIZE = 12, 64


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def make(out: Path, seed: int = 0, *extra: str) -> int:
    return lcp(
        [
            "data",
            "demo",
            "--out",
            str(out),
            "--seed",
            str(seed),
            "--num-images",
            str(NUM_IMAGES),
            "--size",
            str(SIZE),
            "--no-progress",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "demo"
    assert make(out, 7) == 0
    return out


def test_layout_and_annotations(demo):
    clean = sorted(p.name for p in (demo / "clean").iterdir())
    lowq = sorted(p.name for p in (demo / "lowq").iterdir() if p.suffix == ".jpg")
    depth = sorted(p.name for p in (demo / "depth").iterdir())
    assert len(clean) == len(lowq) == len(depth) == NUM_IMAGES
    assert lowq[0] == clean[0].replace(".jpg", "_foggy_beta_0.04.jpg")
    assert sorted(p.name for p in (demo / "annotations").iterdir()) == [
        "clean_test.json",
        "clean_train.json",
        "lowq_test.json",
        "lowq_train.json",
    ]

    sidecar = json.loads((demo / "demo.json").read_text())
    assert sidecar["seed"] == 7 and sidecar["classes"] == ["circle", "square", "triangle"]
    train = json.loads((demo / "annotations" / "clean_train.json").read_text())
    test = json.loads((demo / "annotations" / "clean_test.json").read_text())
    train_ids = {i["id"] for i in train["images"]}
    test_ids = {i["id"] for i in test["images"]}
    assert not train_ids & test_ids and len(train_ids | test_ids) == NUM_IMAGES
    assert len(test_ids) == round(NUM_IMAGES * 0.2)
    assert sidecar["counts"]["objects"] == len(train["annotations"]) + len(test["annotations"])
    assert [c["name"] for c in train["categories"]] == sidecar["classes"]

    lowq_train = json.loads((demo / "annotations" / "lowq_train.json").read_text())
    assert [a["bbox"] for a in lowq_train["annotations"]] == [a["bbox"] for a in train["annotations"]]
    assert {i["file_name"] for i in lowq_train["images"]} <= set(lowq)

    for ann in train["annotations"]:
        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= SIZE and y + h <= SIZE


def test_boxes_frame_the_drawn_shapes(demo):
    """Inside each shape's polygon the colour differs from a ring just outside its box."""
    coco = json.loads((demo / "annotations" / "clean_train.json").read_text())
    names = {i["id"]: i["file_name"] for i in coco["images"]}
    distinct = []
    for ann in coco["annotations"]:
        image = cv2.imread(str(demo / "clean" / names[ann["image_id"]])).astype(np.float32)
        inside = np.zeros((SIZE, SIZE), np.uint8)
        polygon = np.array(ann["segmentation"][0], np.float32).reshape(-1, 2)
        cv2.fillPoly(inside, [np.rint(polygon).astype(np.int32)], 1)
        inside = cv2.erode(inside, np.ones((3, 3), np.uint8))
        x, y, w, h = ann["bbox"]
        box = np.zeros((SIZE, SIZE), np.uint8)
        cv2.rectangle(box, (int(x), int(y)), (int(np.ceil(x + w)), int(np.ceil(y + h))), 1, -1)
        ring = cv2.dilate(box, np.ones((7, 7), np.uint8)) - box
        # the box frames the pixels the shape mostly covers: the polygon may reach half a pixel out
        assert polygon[:, 0].min() >= x - 0.51 and polygon[:, 0].max() <= x + w + 0.51
        assert polygon[:, 1].min() >= y - 0.51 and polygon[:, 1].max() <= y + h + 0.51
        if inside.any() and ring.any():
            difference = image[inside > 0].mean(axis=0) - image[ring > 0].mean(axis=0)
            distinct.append(np.abs(difference).max() > 20)
    assert len(distinct) >= 20 and np.mean(distinct) >= 0.9


def test_boxes_hug_the_pixels_each_shape_covers(demo):
    """The boxes were the vertices' extent, about 1 px short on the right and bottom of the
    drawn shape (OpenCV fills both end pixels of a span), 3-7% of the demo's 15-38 px objects."""
    coco = json.loads((demo / "annotations" / "clean_train.json").read_text())
    errors = []
    for ann in coco["annotations"]:
        coverage = np.zeros((SIZE, SIZE), np.uint8)
        polygon = np.array(ann["segmentation"][0], np.float64).reshape(-1, 2)
        # the segmentation is in COCO's coordinates, OpenCV's are half a pixel less
        cv2.fillPoly(coverage, [np.rint((polygon - 0.5) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
        ys, xs = np.nonzero(coverage >= 128)
        drawn = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]  # pixel i spans [i, i + 1)
        x, y, w, h = ann["bbox"]
        errors.append(np.subtract([x, y, x + w, y + h], drawn))
    errors = np.abs(np.array(errors))
    assert len(errors) >= 20 and errors.max() <= 1 and errors.mean(axis=0).max() < 0.1, errors.mean(axis=0)


def test_fog_grows_with_depth(demo):
    """The foggy image departs from the clean one more where the depth map says far."""
    name = sorted((demo / "clean").iterdir())[0].stem
    clean = cv2.imread(str(demo / "clean" / f"{name}.jpg")).astype(np.float32)
    foggy = cv2.imread(str(demo / "lowq" / f"{name}_foggy_beta_0.04.jpg")).astype(np.float32)
    depth = cv2.imread(str(demo / "depth" / f"{name}.png"), cv2.IMREAD_UNCHANGED) / 256.0
    assert depth.dtype == np.float64 and 3.0 <= depth.min() and depth.max() <= 150.0 + 1e-3
    change = np.abs(foggy - clean).mean(axis=2)
    near, far = depth < 6.0, depth > 30.0
    assert change[far].mean() > change[near].mean() + 5


def test_same_seed_same_bytes_other_seed_differs(demo, tmp_path):
    assert make(tmp_path / "again", 7) == 0
    assert digest(tmp_path / "again") == digest(demo)
    assert make(tmp_path / "other", 8) == 0
    assert digest(tmp_path / "other") != digest(demo)


def test_refuses_to_overwrite_unless_asked(demo, tmp_path, capsys):
    out = tmp_path / "scene"
    assert make(out, 1) == 0
    before = digest(out)
    assert make(out, 2) == 2
    assert "already exists" in capsys.readouterr().err
    assert digest(out) == before
    assert make(out, 2, "--overwrite") == 0
    assert digest(out) != before
    assert [p.name for p in tmp_path.iterdir()] == ["scene"]  # no temporary folders left behind


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert lcp(["data", "demo", "--out", str(tmp_path / "x"), "--num-images", "1"]) == 2
    assert "--num-images" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_bad_beta_is_refused_before_any_image_is_drawn(tmp_path, capsys, monkeypatch):
    from lcp.data import demo as demo_module

    def drawn(*args, **kwargs):
        raise AssertionError("an image was drawn before --beta was checked")

    monkeypatch.setattr(demo_module, "render_scene", drawn)
    assert lcp(["data", "demo", "--out", str(tmp_path / "x"), "--num-images", "4", "--beta", "-1"]) == 2
    assert "--beta" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_lcp_data_check_passes_the_demo(demo, tmp_path, capsys):
    anns = [str(p) for p in sorted((demo / "annotations").glob("*.json"))]
    code = lcp(
        [
            "data",
            "check",
            "--lowq",
            str(demo / "lowq"),
            "--clean",
            str(demo / "clean"),
            "--ann",
            *anns,
            "--classes",
            "circle,square,triangle",
            "--report",
            str(tmp_path / "report.json"),
            "--no-progress",
        ]
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert code == 0, capsys.readouterr().out
    assert report["ok"] and report["errors"] == {} and report["counts"]["pairs"] == NUM_IMAGES
    assert report["counts"]["annotated_images"] == 2 * NUM_IMAGES
