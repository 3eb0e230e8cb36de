"""Scene depth (metres) for the physical degradation models.

Three sources, in the order `lcp data synth` prefers them:

* Cityscapes stereo: `<prefix>_disparity.png` + `<prefix>_camera.json` for the image
  `<prefix>_leftImg8bit.*` (searched recursively, so the Cityscapes city folders work).
  Cityscapes stores disparity as p = 256 * d + 1 (p = 0: invalid), so d = (p - 1) / 256
  and depth = baseline * fx / d. Invalid pixels take the depth of the nearest valid pixel
  on their row (the left one first); rows without any valid pixel get the far limit.
* A depth-map folder: `<stem>.npy` (float metres) or `<stem>.png` (16-bit, metres * 256,
  0 = invalid, the KITTI convention) for the image `<stem>.*`. Invalid pixels are far.
* Fallback, no depth known: a ground plane seen by a level camera. Rows above the horizon
  (a fraction of the height from the top) are at the far limit; below it depth falls as
  near * (H - 1 - y_h) / (y - y_h), reaching `near` on the bottom row.

Depth from files is capped at the far limit (tiny disparities mean huge depths); `near`
only shapes the fallback ground plane.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lcp.errors import LCPError

KITTI_DEPTH_SCALE = 256.0


def ground_plane_depth(height: int, width: int, near: float, far: float, horizon: float) -> np.ndarray:
    """Depth of a flat ground under a level camera; `horizon` is the horizon row / (height - 1)."""
    horizon_row = horizon * (height - 1)
    rows = np.arange(height, dtype=np.float64)
    below = rows - horizon_row
    with np.errstate(divide="ignore"):
        column = np.where(below > 0, near * (height - 1 - horizon_row) / np.maximum(below, 1e-9), far)
    column = np.clip(column, near, far).astype(np.float32)
    return np.repeat(column[:, None], width, axis=1)


def encode_depth_png(depth: np.ndarray) -> bytes:
    """16-bit PNG bytes of a depth map in metres (metres * 256, clipped to the format's range)."""
    from lcp.data.images import encode_png

    scaled = np.clip(np.rint(depth * KITTI_DEPTH_SCALE), 1, 65535).astype(np.uint16)
    return encode_png(scaled)


def read_depth_file(path: Path) -> np.ndarray:
    """Depth in metres from `.npy` or 16-bit `.png`; invalid pixels are NaN."""
    import cv2

    if path.suffix == ".npy":
        try:
            depth = np.load(path)
            if not isinstance(depth, np.ndarray):  # an .npz archive under a .npy name
                depth.close()
                raise ValueError(f"a {type(depth).__name__}, not one array")
            depth = depth.astype(np.float32)
        except (OSError, ValueError) as exc:
            raise LCPError(f"{path}: not a readable .npy depth map ({exc})") from None
        if depth.ndim != 2:
            raise LCPError(f"{path}: depth map must be 2-D, got shape {depth.shape}")
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
        return depth
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 2:
        raise LCPError(f"{path}: depth png must be single-channel 16-bit (metres * 256)")
    depth = raw.astype(np.float32) / KITTI_DEPTH_SCALE
    depth[raw == 0] = np.nan
    return depth


def cityscapes_depth(disparity_path: Path, camera_path: Path) -> np.ndarray:
    """Depth in metres from a Cityscapes disparity png and its camera json; invalid = NaN."""
    import cv2

    raw = cv2.imread(str(disparity_path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 2 or raw.dtype != np.uint16:
        raise LCPError(f"{disparity_path}: not a single-channel 16-bit disparity png (256 * disparity + 1)")
    try:
        camera = json.loads(camera_path.read_text(encoding="utf-8"))
        given = camera["extrinsic"]["baseline"], camera["intrinsic"]["fx"]
        baseline, fx = (float(value) for value in given)
    except (OSError, ValueError, KeyError, TypeError, OverflowError) as exc:
        raise LCPError(f"{camera_path}: not a Cityscapes camera json ({exc!r})") from None
    for key, value, number in zip(("extrinsic.baseline", "intrinsic.fx"), given, (baseline, fx), strict=True):
        # 0 gave no fog, a negative value a transmission above 1, NaN the far limit everywhere
        if isinstance(value, bool) or not 0 < number < math.inf:
            raise LCPError(f"{camera_path}: {key} is {value!r}; a Cityscapes camera json gives a number > 0")
    disparity = (raw.astype(np.float32) - 1.0) / 256.0
    with np.errstate(divide="ignore"):
        depth = np.where(raw > 0, baseline * fx / np.maximum(disparity, 1e-6), np.nan)
    depth[(raw > 0) & (disparity <= 0)] = np.nan
    return depth.astype(np.float32)


def fill_along_rows(depth: np.ndarray, far: float) -> np.ndarray:
    """NaN pixels take the nearest valid value on their row (left first, then right)."""
    valid = np.isfinite(depth)
    columns = np.arange(depth.shape[1])[None, :]
    left = np.maximum.accumulate(np.where(valid, columns, -1), axis=1)
    right = np.flip(np.minimum.accumulate(np.flip(np.where(valid, columns, depth.shape[1]), axis=1), axis=1), axis=1)
    source = np.where(left >= 0, left, right)
    rows = np.arange(depth.shape[0])[:, None]
    has_source = source < depth.shape[1]
    filled = np.full_like(depth, far)
    filled[has_source] = depth[np.broadcast_to(rows, depth.shape)[has_source], source[has_source]]
    return filled


@dataclass
class DepthSource:
    """Where the depth of each image comes from; picklable, so pool workers can use it."""

    near: float
    far: float
    horizon: float = 0.45
    depth_files: dict[str, Path] = field(default_factory=dict)  # image stem -> depth map
    disparity_files: dict[str, Path] = field(default_factory=dict)  # cityscapes prefix -> png
    camera_files: dict[str, Path] = field(default_factory=dict)  # cityscapes prefix -> json
    kind: str = "ground-plane"

    @classmethod
    def from_folders(
        cls,
        near: float,
        far: float,
        horizon: float,
        depth_dir: str | None = None,
        disparity_dir: str | None = None,
        camera_dir: str | None = None,
    ) -> DepthSource:
        if not near > 0 or not far > near:
            raise LCPError(
                f"--near/--far: the depth limits need 0 < --near < --far (metres), got --near {near:g} --far {far:g}"
            )
        if not 0 <= horizon < 1:
            raise LCPError(f"--horizon: must be in [0, 1), got {horizon}")
        source = cls(near=near, far=far, horizon=horizon)
        if disparity_dir or camera_dir:
            if not (disparity_dir and camera_dir):
                raise LCPError("--disparity-dir and --camera-dir: give both or neither")
            source.kind = "cityscapes-disparity"
            source.disparity_files = _index(disparity_dir, "_disparity.png")
            source.camera_files = _index(camera_dir, "_camera.json")
        elif depth_dir:
            source.kind = "depth-maps"
            folder = Path(depth_dir)
            if not folder.is_dir():
                raise LCPError(f"{folder}: depth folder not found")
            maps = [p for p in sorted(folder.iterdir()) if p.suffix in (".npy", ".png")]
            source.depth_files = {p.stem: p for p in maps}
            if not source.depth_files:
                raise LCPError(f"{folder}: no .npy or .png depth maps in this folder")
            if len(source.depth_files) < len(maps):  # a.npy and a.png: which is the image's depth?
                stem = next(stem for stem in source.depth_files if sum(p.stem == stem for p in maps) > 1)
                raise LCPError(f"{folder}: {stem}.npy and {stem}.png both give {stem}'s depth; keep one")
        return source

    def describe(self) -> dict:
        described = {"source": self.kind, "near_m": self.near, "far_m": self.far}
        if self.kind == "ground-plane":
            described["horizon"] = self.horizon
        return described

    def source_for(self, image_path: Path) -> dict:
        """Where the depth of this image comes from, for the sidecar: the source and its file."""
        if self.kind == "ground-plane":
            return {"source": self.kind, "fallback": True}
        if self.kind == "cityscapes-disparity":
            prefix = cityscapes_prefix(image_path.stem)
            path = self.disparity_files.get(prefix)
        else:
            path = self.depth_files.get(image_path.stem)
        return {"source": self.kind, "fallback": False, "file": path.name if path else None}

    def depth_for(self, image_path: Path, height: int, width: int) -> np.ndarray:
        """Depth in metres, shape (height, width), for the image at `image_path`."""
        import cv2

        if self.kind == "ground-plane":
            return ground_plane_depth(height, width, self.near, self.far, self.horizon)
        if self.kind == "cityscapes-disparity":
            prefix = cityscapes_prefix(image_path.stem)
            if prefix not in self.disparity_files or prefix not in self.camera_files:
                raise LCPError(f"{image_path}: no {prefix}_disparity.png / {prefix}_camera.json found")
            source = self.disparity_files[prefix]
            depth = cityscapes_depth(source, self.camera_files[prefix])
            depth = fill_along_rows(depth, self.far)
        else:
            if image_path.stem not in self.depth_files:
                raise LCPError(f"{image_path}: no depth map {image_path.stem}.npy/.png in the depth folder")
            source = self.depth_files[image_path.stem]
            depth = read_depth_file(source)
            depth = np.where(np.isfinite(depth), depth, self.far)
        if depth.shape != (height, width):
            # a scaled map is scaled back; a cropped or transposed one would put fog beside the scene
            if abs(depth.shape[1] * height - depth.shape[0] * width) > 0.01 * depth.shape[0] * width:
                raise LCPError(
                    f"{source}: the depth map is {depth.shape[1]}x{depth.shape[0]}, its image {image_path.name} "
                    f"{width}x{height}: another aspect ratio (cropped or transposed?); give a map of the image's "
                    "shape or a scaled copy of it"
                )
            depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)
        return np.minimum(depth, self.far).astype(np.float32)


def cityscapes_prefix(stem: str) -> str:
    """`aachen_000000_000019_leftImg8bit` -> `aachen_000000_000019`."""
    return stem[: -len("_leftImg8bit")] if stem.endswith("_leftImg8bit") else stem


def _index(folder: str | os.PathLike, suffix: str) -> dict[str, Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise LCPError(f"{folder}: folder not found")
    found = {p.name[: -len(suffix)]: p for p in sorted(folder.rglob(f"*{suffix}"))}
    if not found:
        raise LCPError(f"{folder}: no *{suffix} files (searched sub-folders too)")
    return found
