"""Rain: streaks plus depth-dependent rain accumulation (veiling), after Rainy Cityscapes.

Hu et al., "Depth-attentional features for single-image rain removal", CVPR 2019:
    I = J * (1 - S - V) + S + V * A
with S the rain-streak layer, fading with depth as S = S0 * exp(-alpha * d), and V the
accumulated rain (fog-like veil) V = 1 - exp(-beta * d) towards the atmospheric light A.
S0 is drawn per image: drop seeds thickened to the drop width, motion-blurred along the
fall direction into streaks whose length is proportional to the drop size (bigger drops fall
faster), with `density` the expected fraction of the image the streaks cover, independent
of the image size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lcp.data.degradations import register
from lcp.data.degradations.base import Degradation, Option
from lcp.data.degradations.optics import (
    atmospheric_light,
    gray,
    median_transmission,
    recorded,
    true_median_transmission,
)
from lcp.errors import LCPError

# alpha: streak fading with depth (1/m); beta: veil (1/m); dropsize: drop width as a
# fraction of the image height; density: fraction of the image covered by streaks.
INTENSITIES = {
    "light": {"alpha": 0.03, "beta": 0.005, "dropsize": 0.002, "density": 0.03},
    "medium": {"alpha": 0.02, "beta": 0.01, "dropsize": 0.003, "density": 0.06},
    "heavy": {"alpha": 0.01, "beta": 0.015, "dropsize": 0.004, "density": 0.12},
}
DEFAULT_INTENSITY = "medium"
DEFAULT_ANGLE = -10.0
STREAK_LENGTH_PER_WIDTH = 25
ANGLE_JITTER_DEG = 3.0
# A drop 5% of the image high already draws streaks longer than the image.
MAX_DROP_SIZE = 0.05

# Check thresholds: streak RMS (in [0, 1] grey units) and orientation coherence of the
# added fine detail; angles within this of the sidecar's count as the same rain. Measured on
# the demo scene: fog alone leaves an RMS under 0.009, every rain level at 128 px gives over
# 0.015 and angles within 3 degrees. (Light rain on images under ~100 px has too few
# streaks to measure reliably.)
PRESENT_RMS = 0.012
PRESENT_COHERENCE = 0.3
ANGLE_TOLERANCE_DEG = 10.0
VEIL_TOLERANCE = 0.1


@register
class Rain(Degradation):
    name = "rain"
    marker = "rain"
    model = (
        "I = J * (1 - S - V) + S + V * A, S = S0 * exp(-alpha * depth), V = 1 - exp(-beta * depth); "
        "S0 = oriented motion-blurred drop streaks"
    )
    statistic = "streak_rms"
    depth_defaults = {"near": 5.0, "far": 300.0, "horizon": 0.45}

    options = (
        Option(
            "intensity",
            many=True,
            default=(DEFAULT_INTENSITY,),
            choices=tuple(INTENSITIES),
            help="rain level(s), one output per level: " + "; ".join(f"{k} = {v}" for k, v in INTENSITIES.items()),
        ),
        Option(
            "angle",
            type=float,
            default=DEFAULT_ANGLE,
            help="fall direction in degrees from vertical, positive = towards the right "
            f"going down (default {DEFAULT_ANGLE:g}; each image jitters it by up to "
            f"{ANGLE_JITTER_DEG:g})",
        ),
        Option("alpha", type=float, help="override the levels' streak fading with depth (1/m)"),
        Option("beta", type=float, help="override the levels' rain-accumulation veil coefficient (1/m)"),
        Option("drop_size", type=float, help="override the levels' drop width (fraction of the image height)"),
        Option("density", type=float, help="override the levels' streak coverage (0-1)"),
    )

    def __init__(
        self,
        intensity: Sequence[str] = (DEFAULT_INTENSITY,),
        angle: float = DEFAULT_ANGLE,
        alpha: float | None = None,
        beta: float | None = None,
        drop_size: float | None = None,
        density: float | None = None,
    ):
        """alpha, beta, drop_size and density, where given, replace every level's own."""
        self.intensities = list(intensity or [DEFAULT_INTENSITY])
        unknown = [level for level in self.intensities if level not in INTENSITIES]
        if unknown:
            raise LCPError(f"--intensity: unknown level(s) {unknown}; known: {', '.join(INTENSITIES)}")
        self.angle = float(angle)
        if not -60 <= self.angle <= 60:
            raise LCPError(f"--angle: rain falls within 60 degrees of vertical, got {self.angle}")
        given = {"alpha": alpha, "beta": beta, "dropsize": drop_size, "density": density}
        self.overrides = {key: float(value) for key, value in given.items() if value is not None}
        allowed = {  # key -> (its flag, whether a finite value is in range, the range in words)
            "alpha": ("alpha", lambda v: v >= 0, "a finite value >= 0 (1/m)"),
            "beta": ("beta", lambda v: v >= 0, "a finite value >= 0 (1/m)"),
            "dropsize": (
                "drop-size",
                lambda v: 0 < v <= MAX_DROP_SIZE,
                f"a fraction of the image height in (0, {MAX_DROP_SIZE:g}]",
            ),
            "density": ("density", lambda v: 0 <= v <= 1, "the fraction of the image covered, in [0, 1]"),
        }
        for key, value in self.overrides.items():
            flag, in_range, expected = allowed[key]
            if not (math.isfinite(value) and in_range(value)):
                raise LCPError(f"--{flag}: {value:g} is not {expected}")

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "intensity": self.intensities, "angle": self.angle, "overrides": self.overrides}

    def variants(self) -> list[dict[str, Any]]:
        return [{**INTENSITIES[level], **self.overrides, "angle": self.angle} for level in self.intensities]

    def synthesise(self, clean, depth, variant, rng):
        height, width = clean.shape[:2]
        angle = variant["angle"] + rng.uniform(-ANGLE_JITTER_DEG, ANGLE_JITTER_DEG)
        streaks = streak_layer(height, width, variant["dropsize"], variant["density"], angle, rng)
        streaks = streaks * np.exp(-variant["alpha"] * depth)
        transmission = np.exp(-variant["beta"] * depth)
        streaks = np.minimum(streaks, transmission)  # keeps 1 - S - V >= 0
        light = np.round(atmospheric_light(clean), 5)
        veil = (1.0 - transmission)[..., None]
        rainy = clean * (1.0 - streaks[..., None] - veil) + streaks[..., None] + veil * light
        record = {
            "angle_deg": round(float(angle), 3),
            "atmospheric_light_rgb": [round(float(v), 5) for v in light[::-1]],
            "streak_coverage": round(float((streaks > 0.05).mean()), 5),
            "expected": {
                "angle_deg": round(float(angle), 3),
                "veil_transmission": recorded(true_median_transmission(clean, light, transmission)),
            },
        }
        return rainy, (transmission - streaks).astype(np.float32), record

    @classmethod
    def structure(cls, image, record):
        return remove_streaks(image, record)

    @classmethod
    def measure(cls, clean, lowq, record):
        added = added_streaks(clean, lowq)
        angle, coherence = dominant_orientation(added)
        measured = {
            "streak_rms": round(float(np.sqrt((added**2).mean())), 5),
            "angle_deg": round(angle, 3),
            "coherence": round(coherence, 4),
        }
        if record and "atmospheric_light_rgb" in record:
            light = np.array(record["atmospheric_light_rgb"][::-1], dtype=np.float32)
            measured["veil_transmission"] = recorded(
                median_transmission(remove_streaks(clean, record), remove_streaks(lowq, record), light)
            )
        return measured

    @classmethod
    def judge(cls, measured, record):
        if measured["streak_rms"] < PRESENT_RMS or measured["coherence"] < PRESENT_COHERENCE:
            return [
                (
                    "not_degraded",
                    f"streak RMS {measured['streak_rms']:.4f} (needs >= {PRESENT_RMS}), "
                    f"orientation coherence {measured['coherence']:.2f} "
                    f"(needs >= {PRESENT_COHERENCE})",
                )
            ]
        expected = (record or {}).get("expected", {})
        problems = []
        if "angle_deg" in expected:
            off = abs((measured["angle_deg"] - expected["angle_deg"] + 90.0) % 180.0 - 90.0)
            if off > ANGLE_TOLERANCE_DEG:
                problems.append(
                    (
                        "degradation_out_of_range",
                        f"streaks at {measured['angle_deg']:.1f} deg, the sidecar says "
                        f"{expected['angle_deg']:.1f} (+-{ANGLE_TOLERANCE_DEG:g})",
                    )
                )
        veil, expected_veil = measured.get("veil_transmission"), expected.get("veil_transmission")
        if veil is not None and expected_veil is not None and abs(veil - expected_veil) > VEIL_TOLERANCE:
            problems.append(
                (
                    "degradation_out_of_range",
                    f"veil transmission {veil:.3f}, the sidecar's beta gives {expected_veil:.3f} (+-{VEIL_TOLERANCE})",
                )
            )
        return problems


def streak_layer(
    height: int, width: int, dropsize: float, density: float, angle_deg: float, rng: np.random.Generator
) -> np.ndarray:
    """Rain streaks S0 in [0, 1], shape (height, width)."""
    import cv2

    drop_width = max(1.0, dropsize * height)
    length = max(3, int(round(STREAK_LENGTH_PER_WIDTH * drop_width)))
    seeds_per_pixel = density / (length * drop_width)
    seeds = (rng.random((height, width)) < seeds_per_pixel) * rng.uniform(0.4, 0.9, (height, width))
    seeds = seeds.astype(np.float32)
    thickness = int(round(drop_width))
    if thickness > 1:
        seeds = cv2.dilate(seeds, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (thickness, thickness)))
    kernel = np.zeros((length | 1, length | 1), np.float32)
    centre = (length | 1) // 2
    dx = math.sin(math.radians(angle_deg)) * centre
    dy = math.cos(math.radians(angle_deg)) * centre
    cv2.line(
        kernel,
        (int(round(centre - dx)), int(round(centre - dy))),
        (int(round(centre + dx)), int(round(centre + dy))),
        1.0,
        1,
        cv2.LINE_AA,
    )
    streaks = cv2.filter2D(seeds, -1, kernel / kernel.max(), borderType=cv2.BORDER_CONSTANT)
    return np.clip(streaks, 0.0, 1.0)


def added_streaks(clean: np.ndarray, lowq: np.ndarray) -> np.ndarray:
    """The bright fine detail of `lowq` that the clean image does not explain.

    The veil scales the clean texture by a local gain (1 - V), so the fine detail of lowq
    is regressed on the clean one's within a window, and the positive residual, what was
    added, is the streak layer (up to its own local contrast).
    """
    import cv2

    sigma = 1.0 + clean.shape[0] / 256.0
    detail_lowq = gray(lowq) - cv2.GaussianBlur(gray(lowq), (0, 0), sigma)
    detail_clean = gray(clean) - cv2.GaussianBlur(gray(clean), (0, 0), sigma)
    window = 4.0 * sigma
    gain = cv2.GaussianBlur(detail_lowq * detail_clean, (0, 0), window) / (
        cv2.GaussianBlur(detail_clean * detail_clean, (0, 0), window) + 1e-6
    )
    return np.maximum(detail_lowq - np.clip(gain, 0.0, 1.5) * detail_clean, 0.0)


def remove_streaks(image: np.ndarray, record: dict[str, Any] | None) -> np.ndarray:
    """Grey-level opening wider than the drops: thin bright streaks go, larger structure stays."""
    import cv2

    dropsize = ((record or {}).get("params") or {}).get("dropsize", max(INTENSITIES["heavy"]["dropsize"], 0.003))
    size = 2 * math.ceil(max(1.0, dropsize * image.shape[0])) + 1
    return cv2.morphologyEx(image, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))


def dominant_orientation(layer: np.ndarray) -> tuple[float, float]:
    """(angle of the dominant line direction in degrees from vertical, coherence in [0, 1]).

    From the image-wide structure tensor: gradients run across streaks, so the streak
    direction is perpendicular to the dominant gradient direction.
    """
    import cv2

    # Smoothing first and Scharr's rotation-invariant weights keep the pixel grid from
    # pulling thin streaks' measured angle towards vertical (Sobel alone: up to 7 degrees).
    layer = cv2.GaussianBlur(layer, (0, 0), 1.0)
    gx = cv2.Scharr(layer, cv2.CV_32F, 1, 0)
    gy = cv2.Scharr(layer, cv2.CV_32F, 0, 1)
    jxx, jyy, jxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    total = jxx + jyy
    if total <= 1e-12:
        return 0.0, 0.0
    coherence = math.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / total
    gradient_angle = 0.5 * math.atan2(2 * jxy, jxx - jyy)  # from the x axis, y pointing down
    # A line along (sin a, cos a) (a from vertical, y down) has its gradient along (cos a, -sin a).
    line_angle = -math.degrees(gradient_angle)
    line_angle = (line_angle + 90.0) % 180.0 - 90.0
    return line_angle, coherence
