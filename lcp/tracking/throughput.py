"""Images per second of a training, per logging point and per epoch.

An epoch is timed from its first iteration, not from before_train_epoch: mmcv's EpochBasedRunner
sleeps 2 s between the two.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Throughput:
    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.epoch_images = self.point_images = 0
        self.epoch_start = self.last_point = self.last_iteration_end = 0.0
        self._timed = False

    def start_epoch(self) -> None:
        self.epoch_images = self.point_images = 0
        self._timed = False

    def before_iteration(self) -> None:
        if not self._timed:
            self._timed = True
            self.epoch_start = self.last_point = self.last_iteration_end = self.clock()

    def after_iteration(self, images: int) -> None:
        self.epoch_images += images
        self.point_images += images
        self.last_iteration_end = self.clock()

    def point_rate(self) -> float | None:
        """Images/s since the last logging point (None when nothing was timed); starts the next point."""
        elapsed = self.last_iteration_end - self.last_point
        rate = self.point_images / elapsed if elapsed > 0 and self.point_images else None
        self.last_point, self.point_images = self.last_iteration_end, 0
        return rate

    def epoch_time(self) -> float:
        """Seconds from the epoch's first iteration to the end of its last."""
        return self.last_iteration_end - self.epoch_start
