"""LCP's mmdet components; importing this package registers them (configs list it in custom_imports)."""

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
