"""LCP's mmdet components; importing this package registers them (configs list it in custom_imports)."""

from lcp.models.assigners import SyncFreeMaxIoUAssigner
from lcp.models.backbones import LCPResNet, LCPResNeXt
from lcp.models.catch_up_learner import CatchUpLearner
from lcp.models.crux_learner import CruxLearner
from lcp.models.detector import TRAIN_MODES, LCPDetector

__all__ = ["CatchUpLearner", "CruxLearner", "LCPDetector", "LCPResNeXt", "LCPResNet", "SyncFreeMaxIoUAssigner", "TRAIN_MODES"]
