"""A tiny scene in the demo layout for the dataset and tool tests, written in a second.

    ROOT/clean/*.jpg    clean images: coloured circles, squares and triangles on a gradient
    ROOT/lowq/*.jpg     the same images under a uniform haze (I = J*t + A*(1-t))
    ROOT/annotations/{clean,lowq}_{train,test}.json   COCO, categories circle, square, triangle

The layout and class names are those of `lcp data demo`, so the tiny demo configs read it
with only `data_root` changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("circle", "square", "triangle")
COLOURS = ((40, 40, 220), (40, 200, 40), (220, 120, 30))  # BGR


def _draw(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[tuple[int, list[float]]]]:
    ramp = np.linspace(60, 160, size, dtype=np.float32)
    image = np.stack([np.add.outer(ramp, ramp[::-1]) / 2] * 3, axis=-1)
    image += rng.normal(0, 6, image.shape)
    image = np.clip(image, 0, 255).astype(np.uint8)
    objects = []
    for slot in range(3):
        label = int(rng.integers(len(CLASSES)))
        half = int(rng.integers(size // 10, size // 6))
        cx = int((slot + 0.5) * size / 3)
        cy = int(rng.integers(half + 2, size - half - 2))
        colour = COLOURS[label]
        if CLASSES[label] == "circle":
            cv2.circle(image, (cx, cy), half, colour, -1)
        elif CLASSES[label] == "square":
            cv2.rectangle(image, (cx - half, cy - half), (cx + half, cy + half), colour, -1)
        else:
            points = np.array([[cx, cy - half], [cx - half, cy + half], [cx + half, cy + half]], np.int32)
            cv2.fillPoly(image, [points], colour)
        objects.append((label, [cx - half, cy - half, 2 * half + 1, 2 * half + 1]))
    return image, objects


def _coco(names: list[str], objects: list[list], size: int) -> dict:
    images, annotations = [], []
    for image_id, (name, boxes) in enumerate(zip(names, objects, strict=True), start=1):
        images.append(dict(id=image_id, file_name=name, width=size, height=size))
        for label, box in boxes:
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=label + 1,
                    bbox=[float(v) for v in box],
                    area=float(box[2] * box[3]),
                    iscrowd=0,
                )
            )
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(CLASSES)]
    return dict(images=images, annotations=annotations, categories=categories)


def make_tiny_scene(root: Path, num_train: int = 2, num_test: int = 2, size: int = 128, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for folder in ("clean", "lowq", "annotations"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    splits = {"train": num_train, "test": num_test}
    index = 0
    for split, count in splits.items():
        names, objects = [], []
        for _ in range(count):
            image, boxes = _draw(rng, size)
            name = f"img_{index:03d}.jpg"
            hazy = (image.astype(np.float32) * 0.55 + 200 * 0.45).astype(np.uint8)
            cv2.imwrite(str(root / "clean" / name), image)
            cv2.imwrite(str(root / "lowq" / name), hazy)
            names.append(name)
            objects.append(boxes)
            index += 1
        coco = _coco(names, objects, size)
        for imageset in ("clean", "lowq"):
            (root / "annotations" / f"{imageset}_{split}.json").write_text(json.dumps(coco))
    return root
