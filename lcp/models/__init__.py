"""LCP's mmdet components; importing this package registers them (configs list it in custom_imports).

It also adapts mmcv's scatter to the pinned PyTorch (lcp.apis.compat), so that mmdet's own
tools/train.py and tools/test.py, which load lcp only through a config's custom_imports, run on a GPU.
"""

from lcp.apis.compat import accept_gpu_ids_in_mmcv_scatter
from lcp.models.assigners import SyncFreeMaxIoUAssigner
from lcp.models.backbones import LCPResNet, LCPResNeXt
from lcp.models.bbox_heads import SyncFreeShared2FCBBoxHead
from lcp.models.catch_up_learner import CatchUpLearner
from lcp.models.crux_learner import CruxLearner
from lcp.models.detector import LCPDetector
from lcp.models.loss_parsing import OneSyncCascadeRCNN
from lcp.models.roi_extractors import SyncFreeRoIExtractor
from lcp.models.roi_heads import SyncFreeCascadeRoIHead
from lcp.models.rpn_head import SyncFreeRPNHead
from lcp.models.samplers import SyncFreeRandomSampler
from lcp.modes import TRAIN_MODES

accept_gpu_ids_in_mmcv_scatter()

__all__ = [
    "CatchUpLearner",
    "CruxLearner",
    "LCPDetector",
    "LCPResNeXt",
    "LCPResNet",
    "OneSyncCascadeRCNN",
    "SyncFreeCascadeRoIHead",
    "SyncFreeMaxIoUAssigner",
    "SyncFreeRPNHead",
    "SyncFreeRandomSampler",
    "SyncFreeRoIExtractor",
    "SyncFreeShared2FCBBoxHead",
    "TRAIN_MODES",
]
