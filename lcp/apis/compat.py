"""The one adaptation of mmcv 1.7 to the PyTorch this project pins, applied by the lcp tools.

mmcv 1.7's Scatter (what MMDataParallel uses to move a batch to the GPU) passes GPU ids as
ints to torch's private `_get_stream`, which takes a torch.device in current PyTorch:
every GPU training or test step fails with "'int' object has no attribute 'type'"
(open-mmlab/mmdetection#10720). CPU runs never reach it.
"""

from __future__ import annotations


def accept_gpu_ids_in_mmcv_scatter() -> None:
    """Make mmcv's scatter give torch's _get_stream a torch.device; idempotent."""
    import torch
    from mmcv.parallel import _functions

    original = _functions._get_stream
    if getattr(original, "accepts_gpu_ids", False):
        return

    def get_stream(device):
        if isinstance(device, int):
            try:
                return original(device)  # PyTorch versions that still take an int
            except AttributeError:
                return original(torch.device("cuda", device))
        return original(device)

    get_stream.accepts_gpu_ids = True
    _functions._get_stream = get_stream
