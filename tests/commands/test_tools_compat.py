"""mmcv 1.7's scatter hands GPU ids to torch's stream lookup, which wants a torch.device now;
the lcp tools adapt it (checked on an H100 too: train/test/infer ran through MMDataParallel)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from mmcv.parallel import _functions
from torch.nn.parallel._functions import _get_stream as torch_get_stream

from lcp.apis.compat import accept_gpu_ids_in_mmcv_scatter

REPO = Path(__file__).resolve().parents[2]


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


def test_a_configs_custom_imports_adapt_mmcv_scatter_for_mmdets_own_tools():
    """mmdet's tools/train.py and tools/test.py load lcp only through the config's custom_imports;
    the adaptation must come with it, or their first GPU step fails in mmcv's Scatter. Run in a
    fresh interpreter: whether lcp was imported is a property of the process."""
    code = textwrap.dedent(f"""
        from mmcv import Config
        from mmcv.parallel import _functions
        try:
            _functions._get_stream(0)
        except AttributeError as error:
            print("before:", error)
        Config.fromfile({str(REPO / "config" / "mmdet" / "cascade_rcnn_tiny_demo.py")!r})  # as mmdet's tools read it
        _functions._get_stream(0)  # now asks torch for cuda:0's stream (None without a GPU)
        print("after: adapted")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == ["before: 'int' object has no attribute 'type'", "after: adapted"]
