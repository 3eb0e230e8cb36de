"""lcp.apis.options.select_device on a machine with GPUs, simulated on the CPU (torch.cuda monkeypatched)."""

from __future__ import annotations

import pytest
import torch

from lcp.apis.options import select_device
from lcp.errors import LCPError


@pytest.fixture
def one_visible_gpu(monkeypatch) -> list[int]:
    """torch.cuda as it is with CUDA_VISIBLE_DEVICES=3: one GPU, number 0; the devices set, in order."""
    chosen: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    return chosen


def test_the_visible_gpu_is_selected(one_visible_gpu):
    assert select_device(0) == "cuda"
    assert one_visible_gpu == [0]


@pytest.mark.parametrize("gpu_id", [1, 3, -1])
def test_a_gpu_id_that_is_not_visible_is_one_error_line(one_visible_gpu, gpu_id):
    # torch said "CUDA error: invalid device ordinal" after a traceback, and for -1 set nothing,
    # so that .cuda(-1) and MMDataParallel's device_ids=[-1] failed later, further from the cause
    with pytest.raises(LCPError, match=rf"--gpu-id {gpu_id}: 1 GPU\(s\) visible .* from 0 to 0$"):
        select_device(gpu_id)
    assert one_visible_gpu == []


def test_without_a_gpu_the_id_is_ignored(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device(5) == "cpu"
