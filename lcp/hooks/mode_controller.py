"""TrainModeHook: switch LCPDetector between catch-up and crux training, epoch by epoch.

The configs give the plan as the top-level key `mode_plan = dict(num_epoch=[...], modes=[...])`,
which the hook's arguments refer to (`num_epoch='${mode_plan.num_epoch}'`); lcp.apis.config
refuses a config whose hook would ignore its mode_plan.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmcv.runner import HOOKS, Hook

from lcp.errors import LCPError
from lcp.modes import ALTER, CATCH_UP, CRUX, check_plan, check_plan_length, mode_for_epoch


@HOOKS.register_module()
class TrainModeHook(Hook):
    """Before each training epoch, set the detector's train mode from the epoch number.

    mmcv's runner.epoch counts finished epochs (restored on resume), so the epoch about
    to run is runner.epoch + 1 and a resumed run trains each epoch in the same mode as
    an uninterrupted one.
    """

    def __init__(self, num_epoch: Sequence[int] = (6, 6, 12), modes: Sequence[str] = (CATCH_UP, CRUX, ALTER)):
        check_plan(num_epoch, modes)
        self.num_epoch = list(num_epoch)
        self.modes = list(modes)

    def before_run(self, runner) -> None:
        max_epochs = getattr(runner, "max_epochs", None)
        if max_epochs is None:
            raise LCPError("TrainModeHook: needs an epoch-based runner (runner.max_epochs is not set)")
        cut = check_plan_length(self.num_epoch, self.modes, max_epochs, "TrainModeHook: num_epoch")
        if cut:
            runner.logger.warning(cut)
        if not hasattr(self._detector(runner), "set_train_mode"):
            raise LCPError(
                f"TrainModeHook: the model {type(self._detector(runner)).__name__} has no train modes; use LCPDetector"
            )

    def before_train_epoch(self, runner) -> None:
        epoch = runner.epoch + 1
        mode = mode_for_epoch(epoch, self.num_epoch, self.modes)
        self._detector(runner).set_train_mode(mode)
        runner.logger.info(f"TrainModeHook: epoch {epoch} trains the {mode}")

    @staticmethod
    def _detector(runner):
        return getattr(runner.model, "module", runner.model)
