"""`ReleaseGradientsHook`: the gradients set to None, and the last step's outputs dropped, before
each training step's forward.

mmcv's OptimizerHook clears them after the forward, just before backward, so every forward
found the previous step's .grad still held, and LCPDetector's CUDA graphs of its front
(lcp/models/graph_capture.py) never ran in a training: a graph hands out the same gradient
buffers every step, which a kept .grad would alias. Where the optimizer hook clears every
step anyway (`zeroes_every_step`), clearing before the forward instead changes no number;
mmcv's gradient-cumulative hooks keep .grad over steps on purpose and get no such hook.

mmcv's runner also keeps the last step's outputs, whose loss holds that step's autograd graph
(and its activations) until the next step has returned. Nothing reads them after the step's own
hooks, so they are dropped before the next one. (They were suspected of the failed captures seen
on an H200; measured since, those came from graphs destroyed by Python's collector during a
capture, lcp/models/graph_capture.py. PyTorch's warning that an AccumulateGrad node's stream
"may ... break CUDA graph capture" still shows at the first capture, which succeeds.)
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
    """Sets the optimizer's gradients to None and drops the last step's outputs before each training
    iteration (see the module doc)."""

    def before_train_iter(self, runner) -> None:
        runner.optimizer.zero_grad(set_to_none=True)
        runner.outputs = {}
