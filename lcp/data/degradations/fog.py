"""Homogeneous fog, the Koschmieder model used by Foggy Cityscapes (Sakaridis et al., IJCV 2018)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lcp.data.degradations import register
from lcp.data.degradations.base import Degradation, Option
from lcp.data.degradations.optics import atmospheric_light, median_transmission, recorded, true_median_transmission
from lcp.errors import LCPError

# The check's tolerances, in transmission units. The estimate comes from 8-bit JPEGs, so
# it cannot be exact; a wrong beta (0.01 vs 0.02) moves the median transmission far more.
PRESENT_BELOW = 0.98
TOLERANCE = 0.05

DEFAULT_BETA = 0.02


@register
class Fog(Degradation):
    name = "fog"
    marker = "foggy"
    model = "I = J * t + A * (1 - t), t = exp(-beta * depth); A = mean colour of the dark channel's brightest 0.1%"
    statistic = "transmission"
    depth_defaults = {"near": 5.0, "far": 300.0, "horizon": 0.45}

    options = (
        Option(
            "beta",
            type=float,
            many=True,
            default=(DEFAULT_BETA,),
            help="attenuation coefficient(s) in 1/m, one output per value "
            f"(Foggy Cityscapes: 0.005 0.01 0.02; default {DEFAULT_BETA:g})",
        ),
    )

    def __init__(self, beta: Sequence[float] | float = DEFAULT_BETA):
        self.betas = [float(b) for b in (beta if isinstance(beta, (list, tuple)) else [beta])]
        if not self.betas or any(not 0 < b < math.inf for b in self.betas):
            raise LCPError(f"--beta: attenuation coefficients must be finite and > 0, got {self.betas}")

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "beta": self.betas}

    def variants(self) -> list[dict[str, Any]]:
        return [{"beta": beta} for beta in self.betas]

    def synthesise(self, clean, depth, variant, rng):
        light = np.round(atmospheric_light(clean), 5)
        transmission = np.exp(-variant["beta"] * depth)[..., None]
        foggy = clean * transmission + light * (1.0 - transmission)
        record = {
            "atmospheric_light_rgb": [round(float(v), 5) for v in light[::-1]],
            "mean_transmission": round(float(transmission.mean()), 5),
            "expected": {"transmission": recorded(true_median_transmission(clean, light, transmission[..., 0]))},
        }
        return foggy, transmission[..., 0], record

    @classmethod
    def measure(cls, clean, lowq, record):
        light = _light(record, lowq)
        return {"transmission": recorded(median_transmission(clean, lowq, light))}

    @classmethod
    def judge(cls, measured, record):
        t = measured["transmission"]
        if t is None:
            return []
        if t >= PRESENT_BELOW:
            return [("not_degraded", f"median transmission {t:.3f} (no fog: >= {PRESENT_BELOW})")]
        if t < -TOLERANCE:  # the image moved past the fog's light: another degradation, or other content
            return [
                (
                    "degradation_out_of_range",
                    f"median transmission {t:.3f}: below 0, which fog (I = J t + A (1 - t)) cannot give",
                )
            ]
        expected = (record or {}).get("expected", {}).get("transmission")
        if expected is not None and abs(t - expected) > TOLERANCE:
            return [
                (
                    "degradation_out_of_range",
                    f"median transmission {t:.3f}, the sidecar's beta gives {expected:.3f} (+-{TOLERANCE})",
                )
            ]
        return []


def _light(record: dict | None, lowq: np.ndarray) -> np.ndarray:
    """The sidecar's atmospheric light, else an estimate from the foggy image itself."""
    if record and "atmospheric_light_rgb" in record:
        return np.array(record["atmospheric_light_rgb"][::-1], dtype=np.float32)
    return atmospheric_light(lowq)
