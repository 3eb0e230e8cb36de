"""LCP's mmcv runner hooks; importing this package registers them (configs list it in custom_imports)."""

from lcp.hooks.mode_controller import TrainModeHook, mode_for_epoch
from lcp.hooks.pairing import DFPairingHook

__all__ = ["DFPairingHook", "TrainModeHook", "mode_for_epoch"]
