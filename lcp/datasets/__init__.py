"""What mmdet loads at training and test time (named after mmdet.datasets): the paired dataset,
its pipeline steps and config checks; importing this package registers them in mmdet's
registries. Offline preparation (`lcp data`) lives in lcp.data."""

from lcp.datasets.df_paired import DFPairedDataset, df_choice
from lcp.datasets.pipelines import DFFormatBundle, LoadDFImage

__all__ = ["DFPairedDataset", "DFFormatBundle", "LoadDFImage", "df_choice"]
