"""mmcv 1.7's scatter hands GPU ids to torch's stream lookup, which wants a torch.device now;
the lcp tools adapt it (checked on an H100 too: train/test/infer ran through MMDataParallel)."""

import pytest
import torch
from mmcv.parallel import _functions
from torch.nn.parallel._functions import _get_stream as torch_get_stream

from lcp.apis.compat import accept_gpu_ids_in_mmcv_scatter


def test_mmcv_scatter_stream_lookup_accepts_gpu_ids():
    with pytest.raises(AttributeError):
        torch_get_stream(0)  # what mmcv's Scatter.forward calls for GPU 0
    accept_gpu_ids_in_mmcv_scatter()
    accept_gpu_ids_in_mmcv_scatter()  # applying it twice changes nothing
    assert _functions._get_stream(0) is torch_get_stream(torch.device("cuda", 0))
    assert _functions._get_stream(torch.device("cpu")) is None
