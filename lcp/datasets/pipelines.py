"""Pipeline steps that carry the detection-favoured image `img_df` beside the low-quality `img`.

mmdet 2.x's Resize, RandomFlip, Normalize and Pad transform every key listed in
results['img_fields'] with the same parameters (one scale, one flip decision), so the
pair only has to be listed there: `LoadDFImage` puts 'img_df' first, as the authors'
LCPDataset does, because Resize and Pad take img_shape, scale_factor and pad_shape from
the last key, which must be the low-quality 'img' the boxes belong to. The DF image is
resized once, straight from its own size to the scale (Resize with keep_ratio=False, as
LCP's configs have it), as the authors' pipeline resizes it. The KL loss compares the two
images' features element by element, so `DFFormatBundle` refuses a pair of two shapes.
"""

from __future__ import annotations

import os.path as osp

import mmcv
import numpy as np
from mmcv.parallel import DataContainer
from mmdet.datasets import PIPELINES
from mmdet.datasets.pipelines import DefaultFormatBundle
from mmdet.datasets.pipelines.formatting import to_tensor

from lcp.errors import LCPError


@PIPELINES.register_module()
class LoadDFImage:
    """Load the DF image that DFPairedDataset chose into results['img_df'].

    Put it right after LoadImageFromFile (which creates results['img_fields']).
    Puts 'img_df' first in img_fields and the image's path in 'df_filename' (add it to
    Collect's meta_keys to see the pairing in img_metas).
    """

    def __init__(
        self,
        to_float32: bool = False,
        color_type: str = "color",
        channel_order: str = "bgr",
        file_client_args: dict | None = None,
    ):
        self.to_float32 = to_float32
        self.color_type = color_type
        self.channel_order = channel_order
        self.file_client_args = dict(backend="disk") if file_client_args is None else file_client_args.copy()
        self.file_client = None

    def __call__(self, results: dict) -> dict:
        if "df_info" not in results:
            raise LCPError(
                "LoadDFImage: the sample has no detection-favoured image; "
                "the training dataset must be a DFPairedDataset"
            )
        if "img" not in results:
            raise LCPError("LoadDFImage: put it after LoadImageFromFile in the pipeline")
        if self.file_client is None:
            self.file_client = mmcv.FileClient(**self.file_client_args)
        filename = osp.join(results["df_prefix"], results["df_info"]["filename"])
        try:
            img = mmcv.imfrombytes(
                self.file_client.get(filename), flag=self.color_type, channel_order=self.channel_order
            )
        except Exception as exc:  # mmcv raises various errors for unreadable files; OpenCV's span lines
            problem = " ".join(str(exc).split())
            raise LCPError(f"{filename}: cannot read the detection-favoured image ({problem})") from None
        if img is None:
            raise LCPError(f"{filename}: cannot decode the detection-favoured image")
        if self.to_float32:
            img = img.astype(np.float32)
        results["img_df"] = img
        results["df_filename"] = filename
        results["img_fields"] = ["img_df"] + [key for key in results.get("img_fields", ["img"]) if key != "img_df"]
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(to_float32={self.to_float32}, color_type={self.color_type!r}, "
            f"channel_order={self.channel_order!r}, file_client_args={self.file_client_args})"
        )


def _image_to_chw_tensor(img: np.ndarray, to_float: bool):
    if to_float and img.dtype == np.uint8:
        img = img.astype(np.float32)
    if img.ndim < 3:
        img = np.expand_dims(img, -1)
    return to_tensor(np.ascontiguousarray(img.transpose(2, 0, 1)))


@PIPELINES.register_module()
class DFFormatBundle(DefaultFormatBundle):
    """DefaultFormatBundle that also formats 'img_df' exactly like 'img' (stacked in batches)."""

    def __call__(self, results: dict) -> dict:
        if "img_df" in results and results["img_df"].shape[:2] != results["img"].shape[:2]:
            raise LCPError(
                f"{results.get('df_filename', 'the detection-favoured image')}: ends at "
                f"{results['img_df'].shape[1]}x{results['img_df'].shape[0]} pixels, its low-quality image "
                f"{results.get('filename', '')} at {results['img'].shape[1]}x{results['img'].shape[0]}; the KL loss "
                "needs one size: resize both to one scale (Resize with keep_ratio=False, as LCP's configs do)"
            )
        results = super().__call__(results)
        if "img_df" in results:
            results["img_df"] = DataContainer(
                _image_to_chw_tensor(results["img_df"], self.img_to_float),
                padding_value=self.pad_val["img"],
                stack=True,
            )
        return results
