"""CUDA graphs of LCPDetector's static front, one per (phase, padded batch shape, dtype).

The front is what a crux-mode training step and a test compute before anything depends on
the boxes: crux learner, backbone with the catch-up branch, FPN and the RPN's convolutions
(LCPDetector.front). Its shapes are fixed by the padded batch (the pipeline pads to a
multiple of 32, the collate to the batch's largest image), so one CUDA graph per padded
shape replays its hundreds of kernels with one launch and no Python. Training captures
forward and backward (torch.cuda.make_graphed_callables), a test the forward alone.

FrontGraphs.run decides per call (a no-op that runs the front eagerly wherever a graph
would not compute the same function):
  eager    not CUDA, switched off, catch-up mode (which never calls the front), a phase
           whose grad mode is not its own (training without autograd, a test with it),
           BatchNorm or dropout in training mode inside the front (batch statistics and
           random masks: the published configs freeze BN with norm_eval), distributed
           training (DDP's gradient hooks are untested with graphs), gradients kept from an
           earlier step (accumulation over steps; mmcv's OptimizerHook clears them only after
           the forward, so lcp train clears them before it: lcp/hooks/gradients.py), a stream
           already being captured, the first `warmup_iters` calls of a key (cuDNN autotuning
           and lazy initialisation stay out of the graph), and every new key once `max_graphs`
           are held (each graph keeps its own activation memory);
  capture  the call after the warmup: capture, check the graph against the eager front
           on the same batch (outputs, and in training the parameter gradients), then replay;
           a capture that fails or a graph that differs is said in one warning, and the front
           runs eagerly from then on. On an H200 some of `lcp train`'s crux-mode captures
           failed with cudaErrorStreamCaptureInvalidated, preceded by CUDA's "operation not
           permitted when stream is capturing (function reset)": the graphs of an earlier crux
           epoch, dropped at the mode switch, sit in reference cycles (make_graphed_callables'
           autograd classes), and Python's cyclic collector happened to destroy them in the
           middle of the next capture. So a capture starts with a collection and runs with the
           collector paused (bench/gpu/gpu_checks.py reproduces the failure and checks both);
  replay   a key already captured.

A graph reads the parameters it was captured with, at their addresses, and computes the
gradients of those that required one then. All graphs are dropped when the train mode
changes (LCPDetector.set_train_mode) and whenever a parameter or buffer of the front moved
or changed requires_grad (a signature checked on each CUDA call).

Forward hooks inside the front run while a graph is captured, not when it replays:
CruxHealthHook's heat-map tap then finds no heat map and computes the batch's masks with a
second crux-learner pass, its documented fallback.
"""

from __future__ import annotations

import contextlib
import functools
import gc

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd

from lcp.errors import LCPError

FRONT_MODULES = ("crux_learner", "backbone", "neck", "rpn_head")
EAGER, CAPTURE, REPLAY = "eager", "capture", "replay"
CAPTURED_PHASES = ("crux_learner", "test")
# Largest difference allowed between a graph's and the eager front's tensors, relative to the
# eager tensor's largest magnitude: both run the same kernels, so only atomics reorder sums; a
# graph reading stale or freed memory is off by the order of the values themselves.
TOLERANCE = dict(fp32=5e-3, mixed=5e-2)


class GraphCaptureError(LCPError):
    """A captured front does not compute what the eager one does."""


class StaticFront(nn.Module):
    """The detector's front as a module of its own, for make_graphed_callables: its parameters are
    the front modules' (the graph's input surface), and it is never registered in the detector, so
    the detector's state dict and module tree stay as they are."""

    def __init__(self, detector):
        super().__init__()
        for name in FRONT_MODULES:
            self.add_module(name, getattr(detector, name))
        self._front = detector.front  # a bound method: not registered as a module

    def forward(self, img: torch.Tensor):
        return self._front(img)


def front_phase(detector) -> str:
    """'test' in eval mode, else the detector's train mode."""
    return detector.train_mode if detector.training else "test"


def front_key(detector, img: torch.Tensor) -> tuple:
    """The graph a batch replays: phase, padded batch shape, dtype, device and autocast dtype."""
    autocast = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else None
    return front_phase(detector), tuple(img.shape), img.dtype, img.device, autocast


def parameter_signature(detector) -> tuple:
    """Addresses and requires_grad of the front's parameters and buffers: what a graph was captured with."""
    modules = [getattr(detector, name) for name in FRONT_MODULES]
    return tuple((p.data_ptr(), p.requires_grad) for m in modules for p in m.parameters()) + tuple(
        b.data_ptr() for m in modules for b in m.buffers()
    )


@contextlib.contextmanager
def capture_safe_autocast():
    """Autocast without its weight-cast cache while a graph is captured.

    With the cache, a cast made in a warm-up run is reused by the capture, so the graph would
    read a tensor that the outer autocast region frees when it ends (stale weights, silently).
    mmcv's auto_fp16 (on the FPN's forward) opens a nested region with the cache on; it looks
    `autocast` up in its module at call time, which is patched here for the capture's duration.
    """
    from mmcv.runner import fp16_utils

    saved = fp16_utils.autocast
    fp16_utils.autocast = functools.partial(torch.autocast, "cuda", dtype=torch.float16, cache_enabled=False)
    try:
        if torch.is_autocast_enabled("cuda"):
            with torch.autocast("cuda", dtype=torch.get_autocast_dtype("cuda"), cache_enabled=False):
                yield
        else:
            yield
    finally:
        fp16_utils.autocast = saved


@contextlib.contextmanager
def collector_paused():
    """Collect garbage now, then keep Python's cyclic collector from running inside the block.

    A CUDA graph that is garbage in a reference cycle is destroyed whenever the collector runs;
    during a capture its destruction is an illegal CUDA call that invalidates the capture."""
    gc.collect()
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def release_generators(generators) -> None:
    """After a capture that failed before its end: give each CUDA generator a copy of its own state
    (same seed and offset). torch 2.11 leaves the generators registered with the failed capture,
    and the next random op outside a graph (the samplers' keys) then raises "Offset increment
    outside graph capture encountered unexpectedly"; the copy is not registered anywhere."""
    for generator in generators:
        generator.graphsafe_set_state(generator.clone_state())


def _flat_tensors(outputs) -> list[torch.Tensor]:
    return torch.utils._pytree.tree_leaves(outputs)


def _mismatch(name: str, actual: torch.Tensor | None, expected: torch.Tensor | None, tolerance: float) -> str | None:
    if actual is None or expected is None:
        return None if actual is None and expected is None else f"{name}: one of the two is None"
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        return f"{name}: {tuple(actual.shape)} {actual.dtype} against {tuple(expected.shape)} {expected.dtype}"
    scale = expected.detach().abs().max().float().clamp(min=1e-6)
    difference = (actual.detach().float() - expected.detach().float()).abs().max() / scale
    if not bool(difference <= tolerance):  # NaN fails too
        return f"{name}: largest difference {float(difference):.3g} of its largest magnitude"
    return None


class FrontGraphs:
    """Per-key CUDA graphs of LCPDetector.front (see the module docstring).

    enabled:       the switch; on CPU tensors nothing happens whatever it says.
    warmup_iters:  eager calls of a key before it is captured.
    max_graphs:    graphs held at once; new keys beyond them run eagerly.
    verify:        check each new graph against the eager front once (an eager front pass,
                   and in training its backward, per captured key).
    """

    def __init__(self, enabled: bool = True, warmup_iters: int = 2, max_graphs: int = 4, verify: bool = True):
        if warmup_iters < 1:
            raise LCPError(
                f"graph_capture.warmup_iters must be >= 1 (cuDNN autotuning must stay out of the "
                f"graph), got {warmup_iters}"
            )
        if max_graphs < 0:
            raise LCPError(f"graph_capture.max_graphs must be >= 0, got {max_graphs}")
        self.enabled = bool(enabled)
        self.warmup_iters = int(warmup_iters)
        self.max_graphs = int(max_graphs)
        self.verify = bool(verify)
        self.clear()

    def clear(self) -> None:
        """Forget every graph and every count of eager calls."""
        self.graphs: dict[tuple, object] = {}
        self.calls: dict[tuple, int] = {}
        self.signature: tuple | None = None

    # A copy of a detector must not share graphs that read the original's parameters.
    def __deepcopy__(self, memo):
        return FrontGraphs(self.enabled, self.warmup_iters, self.max_graphs, self.verify)

    def __getstate__(self):
        return dict(
            enabled=self.enabled, warmup_iters=self.warmup_iters, max_graphs=self.max_graphs, verify=self.verify
        )

    def __setstate__(self, state):
        self.__init__(**state)

    def ineligible(self, detector, img: torch.Tensor) -> str | None:
        """Why this call runs eagerly whatever its key, or None when it may use a graph."""
        if not self.enabled:
            return "switched off"
        phase = front_phase(detector)
        if phase not in CAPTURED_PHASES:
            return f"phase {phase!r} is not captured"
        if torch.is_grad_enabled() != detector.training:
            return "training without autograd or a test with it"
        for name in FRONT_MODULES:
            for module in getattr(detector, name).modules():
                if module.training and isinstance(module, (_BatchNorm, _DropoutNd)):
                    return f"{type(module).__name__} in training mode in {name}"
        if dist.is_available() and dist.is_initialized():
            return "distributed training"
        if detector.training and any(
            p.grad is not None for name in FRONT_MODULES for p in getattr(detector, name).parameters()
        ):
            # a graph hands out the same gradient buffers every step, which autograd may make the
            # parameters' .grad: a kept gradient would be overwritten, then added to itself
            return "gradients kept from an earlier step (zero them with set_to_none, mmcv's default)"
        if not img.is_cuda:
            return "not on CUDA"
        if torch.cuda.is_current_stream_capturing():
            return "the stream is already being captured"
        return None

    def next_action(self, key: tuple) -> str:
        """EAGER, CAPTURE or REPLAY for a call of `key`; counts the call. CAPTURE obliges the caller
        to capture (or raise): the key then counts as held."""
        if key in self.graphs:
            return REPLAY
        if len(self.graphs) >= self.max_graphs:
            return EAGER
        self.calls[key] = self.calls.get(key, 0) + 1
        if self.calls[key] <= self.warmup_iters:
            return EAGER
        self.graphs[key] = None  # held from now on; capture() fills it
        return CAPTURE

    def run(self, detector, img: torch.Tensor):
        """detector.front(img): (FPN features, (RPN class scores, RPN box deltas)), from a graph when one applies."""
        if self.ineligible(detector, img) is not None:
            return detector.front(img)
        signature = parameter_signature(detector)
        if signature != self.signature:
            self.clear()
            self.signature = signature
        key = front_key(detector, img)
        action = self.next_action(key)
        if action == EAGER:
            return detector.front(img)
        if action == CAPTURE:
            stream = torch.cuda.current_stream(img.device)
            try:
                self.graphs[key] = self.capture(detector, img)
            except GraphCaptureError as error:
                del self.graphs[key]
                self.give_up(error, stream)
                return detector.front(img)
            except BaseException:
                del self.graphs[key]
                raise
        return self.graphs[key](img)

    def give_up(self, error: GraphCaptureError, stream) -> None:
        """After a capture that failed or a graph that computes something else: the front runs eagerly
        from then on (the eager front is the reference the graphs are checked against), and the
        run goes on. A failed capture can leave its side stream current: `stream` is made current
        again and the device drained before anything else runs."""
        from mmdet.utils import get_root_logger

        torch.cuda.set_stream(stream)
        torch.cuda.synchronize(stream.device)
        release_generators(torch.cuda.default_generators)
        self.enabled = False
        self.clear()
        get_root_logger().warning(f"{error}; LCPDetector's front runs eagerly from now on")

    def capture(self, detector, img: torch.Tensor):
        """A graphed front for img's key, checked against the eager front when `verify`."""
        from mmdet.utils import get_root_logger

        front = StaticFront(detector)
        sample = img.detach().clone()  # the graph's static input; requires_grad as the real one (False)
        try:
            with capture_safe_autocast(), collector_paused():
                graphed = torch.cuda.make_graphed_callables(front, (sample,), allow_unused_input=True)
        except Exception as error:
            raise GraphCaptureError(
                f"capturing LCPDetector's front for {front_key(detector, img)} failed: {error}; "
                "--cfg-options model.graph_capture.enabled=False skips capturing"
            ) from error
        if self.verify:
            self.check(detector, graphed, img)
        hooked = sorted(
            f"{name}.{sub}"
            for name in FRONT_MODULES
            for sub, module in getattr(detector, name).named_modules()
            if module._forward_hooks or module._forward_pre_hooks
        )
        get_root_logger().info(
            f"graph capture: LCPDetector's front captured for phase {front_phase(detector)}, batch "
            f"{tuple(img.shape)} {img.dtype} ({len(self.graphs)} of at most {self.max_graphs} graphs)"
            + (f"; forward hooks on {', '.join(hooked)} ran while capturing and do not run on replay" if hooked else "")
        )
        return graphed

    @staticmethod
    def check(detector, graphed, img: torch.Tensor) -> None:
        """Raise GraphCaptureError unless the graph's outputs (and, in training, the parameter
        gradients for one set of output gradients) match the eager front's on img."""
        tolerance = TOLERANCE["mixed" if torch.is_autocast_enabled("cuda") or img.dtype != torch.float32 else "fp32"]
        expected = _flat_tensors(detector.front(img))
        actual = _flat_tensors(graphed(img))
        problems = [
            _mismatch(f"output {i}", a, e, tolerance) for i, (a, e) in enumerate(zip(actual, expected, strict=True))
        ]
        if detector.training:
            params = [p for name in FRONT_MODULES for p in getattr(detector, name).parameters() if p.requires_grad]
            generator = torch.Generator(device=img.device).manual_seed(0)
            differentiable = [i for i, e in enumerate(expected) if e.requires_grad]
            grad_outputs = [
                torch.randn(expected[i].shape, generator=generator, device=img.device).to(expected[i].dtype)
                for i in differentiable
            ]
            expected_grads = torch.autograd.grad(
                [expected[i] for i in differentiable], params, grad_outputs, allow_unused=True
            )
            actual_grads = torch.autograd.grad(
                [actual[i] for i in differentiable], params, grad_outputs, allow_unused=True
            )
            problems += [
                _mismatch(f"gradient of parameter {i}", a, e, tolerance)
                for i, (a, e) in enumerate(zip(actual_grads, expected_grads, strict=True))
            ]
        problems = [problem for problem in problems if problem]
        if problems:
            raise GraphCaptureError(
                f"the CUDA graph of LCPDetector's front for {front_key(detector, img)} differs from the eager "
                f"front: {'; '.join(problems[:5])}; --cfg-options model.graph_capture.enabled=False skips capturing"
            )
