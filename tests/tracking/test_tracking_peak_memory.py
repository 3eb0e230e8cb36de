"""epoch/peak_gpu_mem_mib is each epoch's own peak: LCPMlflowLoggerHook resets CUDA's peak statistics
at an epoch's start (simulated on the CPU: torch.cuda monkeypatched)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from mmcv.runner import LogBuffer

from lcp.tracking.hook import LCPMlflowLoggerHook


class FakeCudaMemory:
    """torch.cuda's peak allocation statistic: a running maximum until reset."""

    def __init__(self, monkeypatch):
        self.peak = 0.0
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", self.reset)

    def allocate(self, mib: float) -> None:
        self.peak = max(self.peak, mib)

    def reset(self, device=None) -> None:
        self.peak = 0.0


def test_an_epoch_reports_its_own_peak_not_the_runs(monkeypatch):
    memory = FakeCudaMemory(monkeypatch)
    hook = LCPMlflowLoggerHook(scene="s", step="train", method="lcp")
    hook.run = object()  # rank 0 of a tracked run
    runner = SimpleNamespace(log_buffer=LogBuffer())
    peaks = []
    for epoch_mib in (900.0, 300.0):  # e.g. a crux epoch, then a lighter catch-up epoch
        hook.before_train_epoch(runner)
        memory.allocate(epoch_mib)
        peaks.append(memory.peak)
    assert peaks == [900.0, 300.0]
