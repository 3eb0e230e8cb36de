"""`DivergenceHook`: a training whose weights stopped being finite ends there, saying so.

mmcv's runner goes on after a loss of nan: every later step is nan, the epoch checkpoints
and `latest.pth` hold nan weights, and the run ends with exit status 0. Its evaluation finds
no detections and reports AP 0, as the workflow's report then does, with nothing saying why.

The losses reach the host once per step for logging (lcp.models.loss_parsing), so the check
costs nothing while they are finite. A non-finite loss alone is not divergence: fp16's
dynamic loss scaling skips a step whose gradients overflow and goes on with the weights
unchanged. So the hook then checks the weights, after the optimizer's step (OptimizerHook's
ABOVE_NORMAL priority comes before this hook's NORMAL), and stops the training when they
are no longer finite: before its evaluation and checkpoint, so the work dir keeps the last
finite epoch. The stop is an LCPError (exit status 2): the same settings diverge again on a
rerun, so the workflow does not retry it. Weights that are not finite before the first step
(a nan checkpoint resumed or loaded) are refused as such.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from mmcv.runner import HOOKS, Hook

from lcp.errors import LCPError


def nonfinite_losses(log_vars: Mapping[str, Any]) -> dict[str, float]:
    """The loss terms of a step's logged values that are not finite numbers (nan, inf)."""
    return {
        name: value
        for name, value in log_vars.items()
        if "loss" in name and isinstance(value, float) and not math.isfinite(value)
    }


def nonfinite_parameters(named_parameters: Iterable[tuple[str, Any]]) -> list[str]:
    """The names of the parameters holding a value that is not finite."""
    import torch

    return [name for name, parameter in named_parameters if not bool(torch.isfinite(parameter).all())]


def _nonfinite_weights(runner) -> list[str]:
    """nonfinite_parameters of the runner's model, unwrapped from its (distributed) data-parallel wrapper."""
    return nonfinite_parameters(getattr(runner.model, "module", runner.model).named_parameters())


def _some(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def divergence_message(epoch: int, inner_iter: int, losses: Mapping[str, float], parameters: list[str], lr) -> str:
    """One line: where the training diverged, which losses and weights, and what to change."""
    terms = ", ".join(f"{name} {value}" for name, value in losses.items())
    weights = _some(parameters)
    return (
        f"training diverged in epoch {epoch}, iteration {inner_iter}: {terms}, and the weights are no longer "
        f"finite ({weights}); lower the learning rate (optimizer.lr, {lr} in this run) or clip the gradients "
        "(--cfg-options +optimizer_config.grad_clip.max_norm=35); this epoch was not saved"
    )


@HOOKS.register_module()
class DivergenceHook(Hook):
    """Stop the training, naming where and why, once a step has left non-finite weights."""

    def before_run(self, runner) -> None:
        """Weights that are not finite before the first step (a checkpoint an earlier lcp saved
        after its loss turned nan, resumed or loaded) would stop the first iteration with a
        message about the learning rate; name where they came from instead."""
        parameters = _nonfinite_weights(runner)
        if parameters:
            raise LCPError(
                f"the weights this training starts from are not finite ({_some(parameters)}): the checkpoint "
                "it resumed or loaded was saved after a loss turned nan; resume from an earlier epoch_N.pth "
                "(--resume-from) or train from the initial checkpoint again"
            )

    def after_train_iter(self, runner) -> None:
        losses = nonfinite_losses((runner.outputs or {}).get("log_vars") or {})
        if not losses:
            return
        parameters = _nonfinite_weights(runner)
        if not parameters:  # an fp16 step skipped for overflow: the weights did not change
            return
        lr = getattr(runner.optimizer, "defaults", {}).get("lr")  # the configured one, not warm-up's
        raise LCPError(divergence_message(runner.epoch + 1, runner.inner_iter + 1, losses, parameters, lr))
