"""Adaptations of mmcv 1.7, applied by the lcp commands (the scatter one also by importing lcp.models,
as a config's custom_imports do in mmdet's own tools).

To the PyTorch this project pins: mmcv 1.7's Scatter (what MMDataParallel uses to move a batch to
the GPU) passes GPU ids as ints to torch's private `_get_stream`, which takes a torch.device in current PyTorch:
every GPU training or test step fails with "'int' object has no attribute 'type'"
(open-mmlab/mmdetection#10720). CPU runs never reach it.

To job logs: mmcv's ProgressBar (mmdet's single_gpu_test and multi_gpu_test, which evaluation
during training runs) redraws itself with carriage returns, so in a log file one evaluation
was one line of thousands of characters; off a terminal it now writes lcp.progress's lines.
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


def progress_lines_in_mmcv_progress_bar(desc: str = "evaluation", unit: str = "img") -> None:
    """Make mmcv's ProgressBar write progress lines where its stream is no terminal; idempotent."""
    import sys

    import mmcv
    from mmcv.utils import progressbar

    from lcp.progress import ProgressLines, is_terminal

    if getattr(mmcv.ProgressBar, "writes_lines_off_terminal", False):
        return

    class ProgressBar(mmcv.ProgressBar):
        writes_lines_off_terminal = True

        def __init__(self, task_num=0, bar_width=50, start=True, file=None):
            file = sys.stdout if file is None else file  # mmcv binds the stdout of its import time
            self.lines = None if is_terminal(file) else ProgressLines(task_num, desc, unit, file)
            super().__init__(task_num, bar_width, start, file)

        def start(self):
            if self.lines is None:
                super().start()

        def update(self, num_tasks=1):
            if self.lines is None:
                super().update(num_tasks)
            else:
                self.completed += num_tasks
                self.lines.update(num_tasks)

    mmcv.ProgressBar = progressbar.ProgressBar = ProgressBar
