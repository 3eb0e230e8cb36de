"""LCP datasets and pipeline steps; importing this package registers them in mmdet's registries."""

from lcp.datasets.df_paired import DFPairedDataset, df_choice
from lcp.datasets.pipelines import DFFormatBundle, LoadDFImage

__all__ = ["DFPairedDataset", "DFFormatBundle", "LoadDFImage", "df_choice"]
