"""A synthetic street-like scene with known geometry: shapes standing on a textured ground.

A level camera looks over a flat ground (depth from lcp.data.depth.ground_plane_depth) up to
a horizon, above which a smooth sky is far away. Circles, squares and triangles of varied
size, colour and rotation stand on the ground, each fronto-parallel at the depth of its
lowest row, so fog hides far objects more than near ones, as in a real street.
Everything is drawn from one numpy Generator, so a (seed, index) pair fixes the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lcp.data.depth import ground_plane_depth

CLASSES = ("circle", "square", "triangle")
NEAR_M = 3.0
FAR_M = 150.0
OBJECT_MAX_DEPTH_M = 30.0  # beyond this the demo's fog would hide objects entirely
HORIZON_RANGE = (0.2, 0.4)  # horizon row as a fraction of the height
OBJECTS_PER_IMAGE = (2, 6)
SIZE_RANGE = (0.12, 0.3)  # object size as a fraction of the image side
MAX_BOX_IOU = 0.1
MIN_COLOUR_CONTRAST = 0.25  # max channel difference between an object and its background


@dataclass
class SceneObject:
    category: str
    bbox: list[float]  # COCO [x, y, w, h]
    area: float
    polygon: list[float]  # x1, y1, x2, y2, ... in COCO's coordinates (circles: a 24-gon)


@dataclass
class Scene:
    image: np.ndarray  # BGR uint8
    depth: np.ndarray  # float32 metres
    horizon: float
    objects: list[SceneObject]


def render_scene(size: int, rng: np.random.Generator) -> Scene:
    horizon = float(rng.uniform(*HORIZON_RANGE))
    depth = ground_plane_depth(size, size, NEAR_M, FAR_M, horizon)
    canvas = _background(size, horizon, rng)
    objects: list[SceneObject] = []
    horizon_row = horizon * (size - 1)
    # The nearest row whose ground is within OBJECT_MAX_DEPTH_M.
    lowest_far_row = horizon_row + NEAR_M * (size - 1 - horizon_row) / OBJECT_MAX_DEPTH_M
    for _ in range(int(rng.integers(OBJECTS_PER_IMAGE[0], OBJECTS_PER_IMAGE[1] + 1))):
        for _attempt in range(30):
            candidate = _random_shape(size, lowest_far_row, rng)
            if candidate is None:
                continue
            category, points = candidate
            coverage = _coverage(canvas.shape[:2], points)
            box = _box(coverage)
            if box is None:
                continue
            if any(_iou(box, other.bbox) > MAX_BOX_IOU for other in objects):
                continue
            colour = _contrasting_colour(canvas, box, rng)
            if colour is None:
                continue
            _draw(canvas, coverage, points, colour, rng)
            bottom = min(size - 1, int(math.ceil(box[1] + box[3])))
            _draw_mask(depth, points, float(depth[bottom, 0]))
            objects.append(
                SceneObject(
                    category,
                    [round(v, 2) for v in box],
                    round(_polygon_area(points), 2),
                    [round(float(v) + 0.5, 2) for v in points.ravel()],  # OpenCV: pixel i centred at i
                )
            )
            break
    return Scene(_to_uint8(canvas), depth, horizon, objects)


def _background(size: int, horizon: float, rng: np.random.Generator) -> np.ndarray:
    """Float BGR canvas: smooth light sky above the horizon, textured ground below."""
    import cv2

    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    sky_top, sky_bottom = rng.uniform(0.55, 0.95, 3), rng.uniform(0.7, 1.0, 3)
    sky = sky_top + (sky_bottom - sky_top) * ys[..., None]
    # Ground: a gradient between two mid-tone colours along a random direction ...
    direction = rng.uniform(0, 2 * math.pi)
    ramp = xs * math.cos(direction) + ys * math.sin(direction)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    colour_a, colour_b = rng.uniform(0.15, 0.75, 3), rng.uniform(0.15, 0.75, 3)
    ground = colour_a + (colour_b - colour_a) * ramp[..., None]
    # ... plus stripes and/or smoothed noise, each present in most images.
    if rng.random() < 0.7:
        angle, cycles = rng.uniform(0, math.pi), rng.uniform(3, 14)
        phase = rng.uniform(0, 2 * math.pi)
        stripes = np.sin(2 * math.pi * cycles * (xs * math.cos(angle) + ys * math.sin(angle)) + phase)
        ground += rng.uniform(0.04, 0.15) * stripes[..., None] * rng.uniform(0.5, 1.0, 3)
    if rng.random() < 0.8:
        noise = rng.normal(0.0, 1.0, (size, size, 3)).astype(np.float32)
        sigma = float(rng.uniform(0.5, 2.5)) * size / 128
        noise = cv2.GaussianBlur(noise, (0, 0), sigma)
        noise /= max(float(noise.std()), 1e-6)
        ground += rng.uniform(0.03, 0.1) * noise
    sky_mask = (ys * (size - 1) <= horizon * (size - 1))[..., None]
    return np.clip(np.where(sky_mask, sky, ground), 0.0, 1.0).astype(np.float32)


def _random_shape(size: int, lowest_far_row: float, rng: np.random.Generator):
    """(category, vertices float array (N, 2)) fully inside the image, standing on visible ground."""
    category = CLASSES[int(rng.integers(len(CLASSES)))]
    extent = float(rng.uniform(*SIZE_RANGE)) * size
    rotation = float(rng.uniform(0, 2 * math.pi))
    if category == "circle":
        angles = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        radius = extent / 2
    elif category == "square":
        angles = rotation + np.array([0.25, 0.75, 1.25, 1.75]) * math.pi
        radius = extent / 2 * math.sqrt(2) * 0.8
    else:
        angles = rotation + np.array([0.0, 2 / 3, 4 / 3]) * math.pi
        radius = extent / 2 * 1.1
    offsets = np.stack([np.cos(angles), np.sin(angles)], axis=1) * radius
    low, high = -offsets.min(axis=0), size - 1 - offsets.max(axis=0)
    if np.any(high <= low):
        return None
    centre = rng.uniform(low, high)
    points = centre + offsets
    if points[:, 1].max() < lowest_far_row:
        return None
    return category, points


def _contrasting_colour(canvas: np.ndarray, box: list[float], rng: np.random.Generator):
    x, y, w, h = (int(round(v)) for v in box)
    background = canvas[y : y + max(h, 1), x : x + max(w, 1)].reshape(-1, 3).mean(axis=0)
    for _ in range(10):
        colour = rng.uniform(0.0, 1.0, 3)
        colour[int(rng.integers(3))] = rng.uniform(0.7, 1.0)  # a saturated, bright-ish hue
        if np.abs(colour - background).max() >= MIN_COLOUR_CONTRAST:
            return colour
    return None


SUBPIXEL_BITS = 4


def _fixed_point(points: np.ndarray) -> np.ndarray:
    return np.rint(points * (1 << SUBPIXEL_BITS)).astype(np.int32)


def _coverage(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """How much of each pixel the anti-aliased shape covers, 0..255."""
    import cv2

    coverage = np.zeros(shape, np.uint8)  # OpenCV anti-aliases 8-bit images only
    cv2.fillPoly(coverage, [_fixed_point(points)], 255, cv2.LINE_AA, SUBPIXEL_BITS)
    return coverage


def _draw(
    canvas: np.ndarray, coverage: np.ndarray, points: np.ndarray, colour: np.ndarray, rng: np.random.Generator
) -> None:
    """Fill the shape (its `coverage`) with a shaded colour (light from one side), anti-aliased."""
    ys, xs = np.nonzero(coverage)
    if ys.size == 0:
        return
    centre = points.mean(axis=0)
    direction = rng.uniform(0, 2 * math.pi)
    span = max(float(np.ptp(points)), 1.0)
    shade = 1.0 + 0.25 * ((xs - centre[0]) * math.cos(direction) + (ys - centre[1]) * math.sin(direction)) / span
    alpha = coverage[ys, xs][:, None].astype(np.float32) / 255.0
    canvas[ys, xs] = canvas[ys, xs] * (1 - alpha) + np.clip(colour * shade[:, None], 0, 1) * alpha


def _draw_mask(depth: np.ndarray, points: np.ndarray, value: float) -> None:
    import cv2

    cv2.fillPoly(depth, [_fixed_point(points)], value, cv2.LINE_8, SUBPIXEL_BITS)


def _box(coverage: np.ndarray) -> list[float] | None:
    """COCO [x, y, w, h] around the pixels the shape mostly covers, as an annotator would draw
    it: pixel i spans [i, i + 1). (The vertices' extent was about 1 px short on the right and
    bottom: OpenCV puts pixel centres on integer coordinates and fills both end pixels.)"""
    ys, xs = np.nonzero(coverage >= 128)
    if xs.size == 0:
        return None
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min())]


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _to_uint8(canvas: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(canvas * 255.0), 0, 255).astype(np.uint8)
