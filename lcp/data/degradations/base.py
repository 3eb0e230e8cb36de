"""The interface every degradation model implements (see lcp.data.degradations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

# A pixel (or a box) keeping less than this share of the clean image is erased: what the
# detector could see of it is under 10% of its contrast, at most a few grey levels.
ERASED_BELOW = 0.1
# An image with more than this share of its pixels erased is mostly whitened (or tinted) out:
# with the fallback ground-plane depth, the sign that the plane does not fit the scene.
WHITENED_IMAGE_SHARE = 0.5


def format_value(value: Any) -> str:
    """How a parameter value is written in file names: 0.02 -> '0.02', 3.0 -> '3'."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Option:
    """One keyword parameter of a model's constructor, as data: `lcp data synth <model>`
    offers it as --<name, dashed> and passes its value back under `name`."""

    name: str
    help: str
    type: type | None = None  # what each value is read as; None: text
    default: Any = None  # None: not given (the model's default applies)
    many: bool = False  # one value or more, one output image per value
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


class Degradation:
    """A physical model that turns a clean image (+ depth) into a low-quality one.

    Images are float32 BGR arrays in [0, 1]; depth is float32 metres of the same size.
    One instance holds the parameter settings it was constructed with (keyword parameters,
    one per entry of `options`); `variants()` lists them, and each variant gives one output
    image per clean image.
    """

    name: ClassVar[str]  # the command-line name: fog, rain, underwater
    marker: ClassVar[str]  # the file-name marker: foggy, rain, underwater
    model: ClassVar[str]  # the imaging equation, for the sidecar
    statistic: ClassVar[str]  # the measurement summarised per set by the check
    depth_defaults: ClassVar[dict[str, float]]  # near/far/horizon of the fallback depth
    options: ClassVar[tuple[Option, ...]]  # the constructor's keyword parameters

    def config(self) -> dict[str, Any]:
        """The parameters, as the sidecar records them (with the model's `type`)."""
        raise NotImplementedError

    def variants(self) -> list[dict[str, Any]]:
        """Parameter settings, each one output image per clean image; the keys go in the name."""
        raise NotImplementedError

    def suffix(self, variant: dict[str, Any]) -> str:
        pairs = "_".join(f"{key}_{format_value(value)}" for key, value in variant.items())
        return f"_{self.marker}_{pairs}"

    def synthesise(
        self, clean: np.ndarray, depth: np.ndarray, variant: dict[str, Any], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """The degraded image, its visibility and a json-able record of the per-image parameters.

        Visibility (float32, height x width, in [0, 1]) is the weight of the clean image in
        each output pixel: how much of an object's contrast the degradation leaves (fog: the
        transmission; rain: the transmission less the streaks; underwater: the mean of the
        colour channels' transmissions). The record also holds the values the check expects
        to measure (`expected`).
        """
        raise NotImplementedError

    @classmethod
    def structure(cls, image: np.ndarray, record: dict[str, Any] | None) -> np.ndarray:
        """The image as the check compares scenes: what the degradation adds that hides the
        scene's edges is removed here (rain streaks); most degradations keep everything."""
        return image

    @classmethod
    def measure(cls, clean: np.ndarray, lowq: np.ndarray, record: dict[str, Any] | None) -> dict[str, float]:
        """Statistics of the degradation of `lowq` against `clean` (record: the sidecar's, if any)."""
        raise NotImplementedError

    @classmethod
    def judge(cls, measured: dict[str, float], record: dict[str, Any] | None) -> list[tuple[str, str]]:
        """(reason, detail) for each way the measurement fails: 'not_degraded' or
        'degradation_out_of_range'. Without a record only the presence is judged."""
        raise NotImplementedError
