"""LCP: Learning Cruxes to Push for object detection in low-quality images."""

import logging
import warnings

__version__ = "0.1.0"

# Two notices printed by every process that imports mmcv, above any message of ours (an error
# meant to be one line came third): mmcv 1.x announcing 2.0, which this project pins against,
# and torch's note that a CUDA toolkit is installed where no GPU driver is (a login node).
warnings.filterwarnings("ignore", message="On January 1, 2023, MMCV will release v2.0.0", category=UserWarning)
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
