"""mmcv 1.7's scatter hands GPU ids to torch's stream lookup, which wants a torch.device now;
the lcp tools adapt it (checked on an H100 too: train/test/infer ran through MMDataParallel)."""

import pytest
import torch
from mmcv.parallel import _functions
from torch.nn.parallel._functions import _get_stream as torch_get_stream

from lcp.apis.compat import accept_gpu_ids_in_mmcv_scatter


def test_mmcv_scatter_stream_lookup_accepts_gpu_ids(monkeypatch):
    with pytest.raises(AttributeError):
        torch_get_stream(0)  # what mmcv's Scatter.forward calls for GPU 0
    asked = []

    def recording_get_stream(device):  # torch's, recording what it is asked (no GPU here to answer)
        asked.append(device)
        return torch_get_stream(device)

    monkeypatch.setattr(_functions, "_get_stream", recording_get_stream)
    accept_gpu_ids_in_mmcv_scatter()
    adapted = _functions._get_stream
    accept_gpu_ids_in_mmcv_scatter()
    assert _functions._get_stream is adapted  # applying it twice changes nothing
    _functions._get_stream(0)
    _functions._get_stream(torch.device("cpu"))
    assert asked == [0, torch.device("cuda", 0), torch.device("cpu")]  # the int tried first, then the device
