"""`ReleaseGradientsHook`: the gradients set to None before each training step's forward.

mmcv's OptimizerHook clears them after the forward, just before backward, so every forward
found the previous step's .grad still held, and LCPDetector's CUDA graphs of its front
(lcp/models/graph_capture.py) never ran in a training: a graph hands out the same gradient
buffers every step, which a kept .grad would alias. Where the optimizer hook clears every
step anyway (`zeroes_every_step`), clearing before the forward instead changes no number;
mmcv's gradient-cumulative hooks keep .grad over steps on purpose and get no such hook.
"""

from __future__ import annotations

from mmcv.runner import HOOKS, Hook


def zeroes_every_step(optimizer_hook) -> bool:
    """Whether `optimizer_hook` clears the gradients before each backward: mmcv's OptimizerHook and
    Fp16OptimizerHook themselves (not their gradient-cumulative subclasses, nor a user's own)."""
    from mmcv.runner import Fp16OptimizerHook, OptimizerHook

    return type(optimizer_hook) in (OptimizerHook, Fp16OptimizerHook)


@HOOKS.register_module()
class ReleaseGradientsHook(Hook):
    """Sets the optimizer's gradients to None before each training iteration (see the module doc)."""

    def before_train_iter(self, runner) -> None:
        runner.optimizer.zero_grad(set_to_none=True)
