"""Small source data sets for the converter tests, written in the formats the converters read,
plus running `lcp data convert ...` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from pycocotools.coco import COCO

from lcp.cli import main as lcp_main


def write_image(path: Path, width: int = 32, height: int = 24, seed: int = 0) -> np.ndarray:
    """A small smooth colour image in the format its suffix names; returns the pixels (BGR)."""
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    phase = seed * 0.7
    image = np.stack([128 + 100 * np.sin(3 * x + 2 * y + phase + k) for k in range(3)], axis=-1)
    image = np.clip(image, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return image


def write_turned_image(path: Path, orientation: int, width: int = 32, height: int = 24) -> None:
    """An image (JPEG, PNG, ... by its suffix) of width x height stored pixels whose EXIF
    orientation turns it (6: a quarter)."""
    from PIL import Image

    pixels = write_image(path, width, height)
    image = Image.fromarray(pixels[:, :, ::-1].copy())
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, exif=exif.tobytes())


def write_voc_xml(path: Path, filename: str, objects: list[tuple], size: tuple[int, int] = (32, 24)) -> None:
    """objects: (name, xmin, ymin, xmax, ymax[, difficult])."""
    parts = [
        f"<annotation><filename>{filename}</filename>",
        f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>",
    ]
    for name, x1, y1, x2, y2, *difficult in objects:
        flag = f"<difficult>{difficult[0]}</difficult>" if difficult else ""
        parts.append(
            f"<object><name>{name}</name>{flag}<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
            f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        )
    parts.append("</annotation>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def convert(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `lcp data convert ARGV...`; return exit code, stdout, stderr."""
    code = lcp_main(["data", "convert", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def load_coco(path: Path) -> COCO:
    coco = COCO(str(path))
    return coco


def boxes_by_file(coco: COCO) -> dict[str, list[tuple[str, list[float], int]]]:
    """file_name -> [(category name, bbox, iscrowd)] sorted, for comparing with expectations."""
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    result = {}
    for image in coco.loadImgs(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]], iscrowd=None))
        result[image["file_name"]] = sorted((names[a["category_id"]], a["bbox"], a["iscrowd"]) for a in anns)
    return result


def category_names(coco: COCO) -> list[str]:
    """Category names in id order."""
    return [c["name"] for c in sorted(coco.dataset["categories"], key=lambda c: c["id"])]


# ---- a tiny Cityscapes, Foggy Cityscapes and Rainy Cityscapes --------------------------

CONFIG_ORDER = ["bicycle", "bus", "person", "train", "truck", "motorcycle", "car", "rider"]
WIDTH, HEIGHT = 64, 32
TRAIN_FRAME, VAL_FRAME, TEST_FRAME = "aachen_000000_000019", "frankfurt_000000_000294", "berlin_000000_000019"

# Official gtFine polygon format: image size, then objects with label and [x, y] vertices.
TRAIN_OBJECTS = [
    {"label": "road", "polygon": [[0, 20], [63, 20], [63, 31], [0, 31]]},  # no instances: ignored
    {"label": "car", "polygon": [[2, 3], [20, 3], [22, 15], [4, 14]]},
    {"label": "person", "polygon": [[30, 5], [35, 4], [36, 25], [31, 26]]},
    {"label": "cargroup", "polygon": [[40, 2], [50, 2], [50, 9], [40, 9]]},  # group: crowd box
    {"label": "caravan", "polygon": [[10, 20], [18, 20], [18, 28]]},  # ignoreInEval: ignored
    {"label": "bicycle", "polygon": [[58, 20], [70, 24], [60, 31]]},  # leaves the image: clipped
    {"label": "rider", "polygon": [[1, 1], [9, 1], [9, 9]], "deleted": 1},  # deleted: skipped
    {"label": "sky", "polygon": [[0, 0], [63, 0], [63, 5]]},  # no instances: ignored
    # every other detection class once, as in real Cityscapes (a class without a box is refused)
    {"label": "bus", "polygon": [[24, 2], [30, 2], [30, 8]]},
    {"label": "train", "polygon": [[24, 10], [30, 10], [30, 16]]},
    {"label": "truck", "polygon": [[52, 2], [58, 2], [58, 8]]},
    {"label": "motorcycle", "polygon": [[52, 10], [58, 10], [58, 16]]},
    {"label": "rider", "polygon": [[40, 12], [46, 12], [46, 18]]},
]
OTHER_CLASSES = ("bus", "train", "truck", "motorcycle", "rider")
VAL_OBJECTS = [
    {"label": "bus", "polygon": [[5, 6], [25, 6], [25, 20], [5, 20]]},
    {"label": "rider", "polygon": [[40.5, 10.25], [44, 18], [38, 16]]},
]


def extent(polygon, width=WIDTH, height=HEIGHT):
    """The polygon's extent as COCO [x, y, w, h], clipped to the image."""
    xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
    x1, y1, x2, y2 = max(min(xs), 0), max(min(ys), 0), min(max(xs), width), min(max(ys), height)
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def write_polygons(root: Path, split: str, frame: str, objects: list[dict]) -> Path:
    city = frame.split("_")[0]
    path = root / "gtFine" / split / city / f"{frame}_gtFine_polygons.json"
    write_json(path, {"imgHeight": HEIGHT, "imgWidth": WIDTH, "objects": objects})
    return path


def write_cityscapes(tmp_path: Path) -> dict[str, Path]:
    """Three annotated frames with clear, foggy (3 betas) and rainy (train frame only) images."""
    root = tmp_path / "cityscapes"
    write_polygons(root, "train", TRAIN_FRAME, TRAIN_OBJECTS)
    write_polygons(root, "val", VAL_FRAME, VAL_OBJECTS)
    write_polygons(root, "test", TEST_FRAME, [{"label": "car", "polygon": [[1, 1], [5, 5]]}])  # test split: unused
    foggy, rainy = tmp_path / "leftImg8bit_foggy", tmp_path / "leftImg8bit_rain"
    for seed, (split, frame) in enumerate([("train", TRAIN_FRAME), ("val", VAL_FRAME), ("test", TEST_FRAME)]):
        city = frame.split("_")[0]
        write_image(root / "leftImg8bit" / split / city / f"{frame}_leftImg8bit.png", WIDTH, HEIGHT, seed)
        for beta in ("0.005", "0.01", "0.02"):
            write_image(foggy / split / city / f"{frame}_leftImg8bit_foggy_beta_{beta}.png", WIDTH, HEIGHT, seed)
    for pattern in (1, 2):  # Rainy Cityscapes covers only some frames: none of val here
        name = f"{TRAIN_FRAME}_leftImg8bit_rain_alpha_0.01_beta_0.005_dropsize_0.01_pattern_{pattern}.png"
        write_image(rainy / "train" / "aachen" / name, WIDTH, HEIGHT, pattern)
    return {"root": root, "foggy": foggy, "rainy": rainy, "out": tmp_path / "city"}
