"""LCP's mmcv runner hooks; importing this package registers them (configs list it in custom_imports;
`lcp train` adds RandomStateHook and DivergenceHook to every run itself)."""

from lcp.hooks.crux_health import CruxHealthHook, collapse_verdict, mask_statistics
from lcp.hooks.divergence import DivergenceHook
from lcp.hooks.gradients import ReleaseGradientsHook
from lcp.hooks.mode_controller import TrainModeHook, mode_for_epoch
from lcp.hooks.pairing import DFPairingHook
from lcp.hooks.random_state import RandomStateHook

__all__ = [
    "CruxHealthHook",
    "DFPairingHook",
    "DivergenceHook",
    "RandomStateHook",
    "ReleaseGradientsHook",
    "TrainModeHook",
    "collapse_verdict",
    "mask_statistics",
    "mode_for_epoch",
]
