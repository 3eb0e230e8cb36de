"""Estimates shared by the scattering models: atmospheric light and transmission."""

from __future__ import annotations

import numpy as np

# Pixels whose colour differs from the airlight by less than this (in [0, 1] units) say
# nothing about transmission: (I - A) / (J - A) is dominated by JPEG noise there.
MIN_CONTRAST_TO_LIGHT = 0.1


def recorded(value: float | None) -> float | None:
    """An estimate as the sidecars and check reports record it: 5 decimals, None kept."""
    return None if value is None else round(value, 5)


def dark_channel(image: np.ndarray, patch: int) -> np.ndarray:
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    return cv2.erode(image.min(axis=2), kernel)


def atmospheric_light(image: np.ndarray) -> np.ndarray:
    """He et al.'s estimate: mean colour of the brightest 0.1% of the dark channel (BGR)."""
    height, width = image.shape[:2]
    patch = int(np.clip(min(height, width) // 40, 3, 15)) | 1
    dark = dark_channel(image, patch).ravel()
    count = max(1, int(round(dark.size * 0.001)))
    return image.reshape(-1, 3)[brightest_pixels(dark, count)].mean(axis=0).astype(np.float32)


def brightest_pixels(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` largest `values`, ties at the cut broken by the larger index (as the
    last `count` of a stable sort): the eroded dark channel ties many pixels there, and which of
    them np.argpartition keeps depends on the CPU's vector instructions."""
    threshold = np.partition(values, values.size - count)[values.size - count]
    above = np.flatnonzero(values > threshold)
    ties = np.flatnonzero(values == threshold)
    return np.concatenate([above, ties[len(ties) - (count - len(above)) :]])


def contrast_mask(clean: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Pixels where the clean colour is far enough from the light to measure transmission."""
    difference = np.abs(clean - light)
    # Per-channel slices: numpy's reduction over a last axis of 3 is several times slower.
    return np.maximum(np.maximum(difference[..., 0], difference[..., 1]), difference[..., 2]) >= MIN_CONTRAST_TO_LIGHT


def pixel_transmission(clean: np.ndarray, lowq: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Per-pixel least-squares t of lowq = t * clean + (1 - t) * light over the channels."""
    direct = clean - light
    product, norm = (lowq - light) * direct, direct * direct
    norm = np.maximum(norm[..., 0] + norm[..., 1] + norm[..., 2], 1e-6)
    return (product[..., 0] + product[..., 1] + product[..., 2]) / norm


def median_transmission(clean: np.ndarray, lowq: np.ndarray, light: np.ndarray) -> float | None:
    """Median estimated transmission over the measurable pixels; None if under 1% are."""
    mask = contrast_mask(clean, light)
    if mask.mean() < 0.01:
        return None
    return float(np.median(pixel_transmission(clean, lowq, light)[mask]))


def true_median_transmission(clean: np.ndarray, light: np.ndarray, transmission: np.ndarray) -> float | None:
    """The median of the model's transmission over the pixels the check will measure."""
    mask = contrast_mask(clean, light)
    if mask.mean() < 0.01:
        return None
    return float(np.median(transmission[mask]))


def channel_transmission(
    clean: np.ndarray, lowq: np.ndarray, light: np.ndarray, transmission: np.ndarray | None = None
) -> list[float | None]:
    """Per channel (BGR): the median of (I_c - B_c) / (J_c - B_c), or, when `transmission`
    (H, W, 3) is given, the median of the model's own transmission, over the pixels where
    |J_c - B_c| is measurable."""
    medians = []
    for c in range(3):
        direct = clean[..., c] - light[c]
        mask = np.abs(direct) >= MIN_CONTRAST_TO_LIGHT
        if mask.mean() < 0.01:
            medians.append(None)
            continue
        if transmission is None:
            values = (lowq[..., c][mask] - light[c]) / direct[mask]
        else:
            values = transmission[..., c][mask]
        medians.append(float(np.median(values)))
    return medians


def gray(image: np.ndarray) -> np.ndarray:
    return image @ np.array([0.114, 0.587, 0.299], dtype=np.float32)
