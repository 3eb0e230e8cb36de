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


def write_voc_xml(path: Path, filename: str, objects: list[tuple], size: tuple[int, int] = (32, 24)) -> None:
    """objects: (name, xmin, ymin, xmax, ymax[, difficult])."""
    parts = [f"<annotation><filename>{filename}</filename>",
             f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"]
    for name, x1, y1, x2, y2, *difficult in objects:
        flag = f"<difficult>{difficult[0]}</difficult>" if difficult else ""
        parts.append(f"<object><name>{name}</name>{flag}<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                     f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")
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
