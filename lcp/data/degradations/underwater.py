"""Underwater: wavelength-dependent attenuation and backscatter (a simplified Jaffe-McGlamery
model as used by UWCNN, Li et al., Pattern Recognition 2020):
    I_c = J_c * exp(-beta_c * d) + B_c * (1 - exp(-beta_c * d))
per colour channel c; red attenuates most, so distant objects turn blue-green and fade into
the water colour B. The water types' coefficients are rounded stand-ins for Jerlov's oceanic
(I, III) and coastal (1C, 5C, 9C) classes at about 620/530/460 nm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lcp.data.degradations import register
from lcp.data.degradations.base import Degradation, Option
from lcp.data.degradations.optics import channel_transmission, recorded
from lcp.errors import LCPError

# type -> (attenuation R, G, B in 1/m, backscatter colour R, G, B in [0, 1])
WATER_TYPES = {
    "I": ((0.40, 0.07, 0.04), (0.05, 0.30, 0.45)),
    "III": ((0.47, 0.13, 0.13), (0.05, 0.35, 0.40)),
    "1C": ((0.50, 0.17, 0.22), (0.08, 0.40, 0.38)),
    "5C": ((0.65, 0.30, 0.45), (0.10, 0.45, 0.30)),
    "9C": ((0.95, 0.55, 0.85), (0.15, 0.40, 0.20)),
}
DEFAULT_WATER = "5C"

# Check: red (the channel water absorbs most) must have lost transmission, and each
# channel's transmission must be within the tolerance of the sidecar's.
PRESENT_BELOW = 0.95
TOLERANCE = 0.05


@register
class Underwater(Degradation):
    name = "underwater"
    marker = "underwater"
    model = "I_c = J_c * t_c + B_c * (1 - t_c), t_c = exp(-beta_c * depth) per colour channel (Jerlov water types)"
    statistic = "red_transmission"
    depth_defaults = {"near": 1.0, "far": 10.0, "horizon": 0.0}

    options = (
        Option(
            "water",
            many=True,
            default=(DEFAULT_WATER,),
            choices=tuple(WATER_TYPES),
            help="Jerlov water type(s), one output per type: oceanic I, III; coastal 1C, 5C, 9C (murkier); "
            f"default {DEFAULT_WATER}",
        ),
    )

    def __init__(self, water: Sequence[str] = (DEFAULT_WATER,)):
        self.waters = list(water or [DEFAULT_WATER])
        unknown = [w for w in self.waters if w not in WATER_TYPES]
        if unknown:
            raise LCPError(f"--water: unknown type(s) {unknown}; known: {', '.join(WATER_TYPES)}")

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "water": self.waters}

    def variants(self) -> list[dict[str, Any]]:
        return [{"type": water} for water in self.waters]

    def synthesise(self, clean, depth, variant, rng):
        attenuation_rgb, backscatter_rgb = WATER_TYPES[variant["type"]]
        attenuation = np.array(attenuation_rgb[::-1], np.float32)
        backscatter = np.array(backscatter_rgb[::-1], np.float32)
        transmission = np.exp(-depth[..., None] * attenuation)
        underwater = clean * transmission + backscatter * (1.0 - transmission)
        expected = channel_transmission(clean, underwater, backscatter, transmission)
        record = {
            "attenuation_rgb": list(attenuation_rgb),
            "backscatter_rgb": list(backscatter_rgb),
            "mean_transmission_rgb": [round(float(transmission[..., c].mean()), 5) for c in (2, 1, 0)],
            "expected": {"transmission_rgb": [recorded(v) for v in expected[::-1]]},
        }
        return underwater, transmission.mean(axis=2), record

    @classmethod
    def measure(cls, clean, lowq, record):
        if record and "backscatter_rgb" in record:
            backscatter = np.array(record["backscatter_rgb"][::-1], np.float32)
            transmission = [recorded(v) for v in channel_transmission(clean, lowq, backscatter)[::-1]]
        else:
            transmission = [_slope(clean[..., c], lowq[..., c]) for c in (2, 1, 0)]
        red, green, blue = transmission
        cast = None if None in transmission else round(min(green, blue) - red, 5)
        return {"transmission_rgb": transmission, "red_transmission": red, "red_cast": cast}

    @classmethod
    def judge(cls, measured, record):
        red = measured["red_transmission"]
        if red is None:
            return []
        if red >= PRESENT_BELOW:
            return [("not_degraded", f"red transmission {red:.3f} (no attenuation: >= {PRESENT_BELOW})")]
        expected = (record or {}).get("expected", {}).get("transmission_rgb")
        if expected:
            off = [
                abs(m - e) for m, e in zip(measured["transmission_rgb"], expected, strict=False) if None not in (m, e)
            ]
            if off and max(off) > TOLERANCE:
                return [
                    (
                        "degradation_out_of_range",
                        f"transmission RGB {measured['transmission_rgb']}, the sidecar's water type gives "
                        f"{expected} (+-{TOLERANCE})",
                    )
                ]
        return []


def _slope(clean: np.ndarray, lowq: np.ndarray) -> float | None:
    """Least-squares gain of lowq on clean: the mean transmission when the water colour is unknown."""
    variance = float(clean.var())
    if variance < 1e-6:
        return None
    return round(float(((clean - clean.mean()) * (lowq - lowq.mean())).mean() / variance), 5)
