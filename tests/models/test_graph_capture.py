"""CUDA graphs of LCPDetector's front (lcp/models/graph_capture.py): a no-op on the CPU that leaves every
result bit-identical, the key and schedule that decide when a graph is captured, and what drops graphs.
The tests marked cuda compare captured and eager steps on a GPU."""

from __future__ import annotations

import copy
import gc
import types

import pytest
import torch
from mmcv.runner import BaseModule, auto_fp16, wrap_fp16_model
from mmdet.models.detectors import CascadeRCNN

from helpers.model_configs import batch, batch_on, build, randomize_bn_statistics, tiny_lcp_cfg
from lcp.apis.config import load_config
from lcp.errors import LCPError
from lcp.models import graph_capture
from lcp.models.graph_capture import (
    CAPTURE,
    EAGER,
    REPLAY,
    FrontGraphs,
    GraphCaptureError,
    capture_safe_autocast,
    collector_paused,
    front_key,
    parameter_signature,
    release_generators,
)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def tiny_detector(graph_capture=None, mode="crux_learner", seed=0):
    torch.manual_seed(seed)
    cfg = tiny_lcp_cfg()
    cfg.test_cfg.rcnn.score_thr = 0.0  # every detection is compared
    if graph_capture is not None:
        cfg.graph_capture = graph_capture
    model = build(cfg)
    model.init_weights()
    randomize_bn_statistics(model, seed)
    model.set_train_mode(mode)
    return model.train()


def losses_and_grads(model, data, forward_train):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the samplers draw at random
    losses = forward_train(model, data["img"], data["img_metas"], data["gt_bboxes"], data["gt_labels"])
    loss, _ = model._parse_losses(losses)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return {name: as_list(value) for name, value in losses.items()}, grads


def as_list(value):
    """A loss as a list of detached tensors (the RPN's come per level)."""
    return [v.detach() for v in value] if isinstance(value, list) else [value.detach()]


def assert_identical(first, second):
    assert first.keys() == second.keys()
    for name in first:
        for x, y in zip(as_list(first[name]), as_list(second[name]), strict=True):
            assert torch.equal(x, y), name


def test_switched_on_it_changes_nothing_on_the_cpu():
    """The default (on) against mmdet's own two-stage forward on the same model: the same losses,
    gradients and detections bit for bit, and no call was even counted for a graph."""
    model = tiny_detector()
    assert model.front_graphs.enabled
    data = batch()
    ours = losses_and_grads(model, data, type(model).forward_train)
    mmdet = losses_and_grads(model, data, CascadeRCNN.forward_train)
    assert len(ours[0]["loss_rpn_cls"]) == 5 and "s0.loss_cls" in ours[0]
    assert_identical(ours[0], mmdet[0])
    assert_identical(ours[1], mmdet[1])
    assert any(name.startswith("crux_learner.") for name in ours[1])  # crux mode: the crux learner trains

    model.eval()
    with torch.no_grad():
        detections = model.simple_test(data["img"], data["img_metas"])
        reference = CascadeRCNN.simple_test(model, data["img"], data["img_metas"])
    for ours_per_class, theirs_per_class in zip(detections[0], reference[0], strict=True):
        assert (ours_per_class == theirs_per_class).all()
    assert sum(len(boxes) for boxes in detections[0]) > 0
    assert model.front_graphs.graphs == {} and model.front_graphs.calls == {}


def test_keys_tell_phase_padded_shape_and_dtype_apart():
    model = tiny_detector()
    img = torch.zeros(2, 3, 64, 96)
    key = front_key(model, img)
    assert key == front_key(model, torch.ones(2, 3, 64, 96))  # same padded batch, other pixels
    assert key[:3] == ("crux_learner", (2, 3, 64, 96), torch.float32)
    others = [
        front_key(model, torch.zeros(2, 3, 96, 64)),
        front_key(model, torch.zeros(1, 3, 64, 96)),
        front_key(model, img.half()),
        front_key(model.eval(), img),
    ]
    assert len({key, *others}) == 5
    assert others[-1][0] == "test"


def test_each_key_warms_up_eagerly_then_is_captured_once_and_replayed():
    graphs = FrontGraphs(warmup_iters=2, max_graphs=1)
    assert [graphs.next_action("a") for _ in range(5)] == [EAGER, EAGER, CAPTURE, REPLAY, REPLAY]
    # the cap is reached: a new shape runs eagerly for good, and its calls are not even counted
    assert [graphs.next_action("b") for _ in range(4)] == [EAGER] * 4
    assert "b" not in graphs.calls and list(graphs.graphs) == ["a"]
    graphs.clear()
    assert graphs.next_action("b") == EAGER and graphs.graphs == {}
    assert [FrontGraphs(max_graphs=0).next_action("a") for _ in range(4)] == [EAGER] * 4


def test_a_new_train_mode_or_moved_parameters_drop_the_graphs():
    model = tiny_detector()
    graphs = model.front_graphs
    graphs.graphs["held"] = object()
    model.set_train_mode("crux_learner")  # the same mode: the graphs still hold
    assert "held" in graphs.graphs
    crux_signature = parameter_signature(model)
    model.set_train_mode("catch_up_learner")
    assert graphs.graphs == {} and graphs.calls == {}
    assert parameter_signature(model) != crux_signature  # requires_grad moved: run() would drop them too
    model.set_train_mode("crux_learner")
    assert parameter_signature(model) == crux_signature
    model.double()  # new parameter storage
    assert parameter_signature(model) != crux_signature


def test_what_runs_eagerly_whatever_the_shape():
    model = tiny_detector()
    img = torch.zeros(2, 3, 64, 64)
    assert model.front_graphs.ineligible(model, img) == "not on CUDA"
    assert FrontGraphs(enabled=False).ineligible(model, img) == "switched off"
    with torch.no_grad():
        assert "without autograd" in model.front_graphs.ineligible(model, img)
    assert "test with" in model.front_graphs.ineligible(model.eval(), img)
    with torch.no_grad():
        assert model.front_graphs.ineligible(model, img) == "not on CUDA"
    model.train()
    kept = next(model.rpn_head.parameters())
    kept.grad = torch.zeros_like(kept)  # a gradient kept over steps
    assert model.front_graphs.ineligible(model, img).startswith("gradients kept from an earlier step")
    model.zero_grad(set_to_none=True)
    assert model.front_graphs.ineligible(model, img) == "not on CUDA"
    model.set_train_mode("catch_up_learner")
    assert model.front_graphs.ineligible(model, img) == "phase 'catch_up_learner' is not captured"
    model.set_train_mode("crux_learner")
    model.backbone.norm_eval = False  # batch statistics: a graph would not compute them per batch
    model.train()
    assert model.front_graphs.ineligible(model, img) == "BatchNorm2d in training mode in backbone"


def test_settings_come_from_the_config_and_copies_hold_no_graphs():
    r50 = load_config("config/mmdet/lcp_r50_foggy_city.py").model
    assert r50.graph_capture == dict(enabled=True, warmup_iters=2, max_graphs=4, verify=True)
    model = tiny_detector(graph_capture=dict(enabled=False, max_graphs=2))
    assert not model.front_graphs.enabled and model.front_graphs.max_graphs == 2
    model.front_graphs.graphs["held"] = object()
    twin = copy.deepcopy(model)
    assert twin.front_graphs is not model.front_graphs and twin.front_graphs.graphs == {}
    assert (twin.front_graphs.enabled, twin.front_graphs.max_graphs) == (False, 2)
    assert not any("front_graphs" in key for key in model.state_dict())
    with pytest.raises(LCPError, match="warmup_iters"):
        FrontGraphs(warmup_iters=0)


@pytest.mark.parametrize("training", [True, False])
def test_a_graph_that_computes_something_else_is_refused_loudly(training):
    """The check run on every new graph, here on the CPU with the eager front standing in for the
    graph: itself passes; scaled outputs (what a graph reading stale memory gives) raise."""
    model = tiny_detector().train(training)
    img = batch()["img"]

    def scaled_front(img):
        return torch.utils._pytree.tree_map(lambda t: 1.5 * t, model.front(img))

    with torch.set_grad_enabled(training):
        FrontGraphs.check(model, model.front, img)
        with pytest.raises(GraphCaptureError, match="differs from the eager front.*graph_capture.enabled=False"):
            FrontGraphs.check(model, scaled_front, img)


def test_a_capture_that_fails_is_said_once_and_the_front_runs_eagerly(monkeypatch, caplog):
    """A CUDA graph is an optimisation: its capture failing (as lcp train's first crux-mode capture did
    on an H200) must not end the run. Here on the CPU, the capture made to fail: the caller's stream is
    made current again, the front runs eagerly from then on and computes what it computes eagerly."""
    model = tiny_detector().eval()
    img = batch()["img"]
    monkeypatch.setattr(FrontGraphs, "ineligible", lambda self, detector, img: None if self.enabled else "off")
    caller_stream, made_current, attempts = types.SimpleNamespace(device="cuda:0"), [], []
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: caller_stream)
    monkeypatch.setattr(torch.cuda, "set_stream", made_current.append)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    released = []
    monkeypatch.setattr(graph_capture, "release_generators", released.append)

    def failing_capture(self, detector, img):
        attempts.append(detector)
        raise GraphCaptureError("capturing LCPDetector's front failed: CUDA error: operation failed during capture")

    monkeypatch.setattr(FrontGraphs, "capture", failing_capture)
    with torch.no_grad():
        expected = model.front(img)
        outputs = [model.front_graphs.run(model, img) for _ in range(5)]  # 2 warm-up calls, then the capture
    flat = torch.utils._pytree.tree_leaves
    for output in outputs:
        assert all(torch.equal(x, y) for x, y in zip(flat(output), flat(expected), strict=True))
    assert len(attempts) == 1 and made_current == [caller_stream]
    assert released == [torch.cuda.default_generators]
    assert not model.front_graphs.enabled and model.front_graphs.graphs == {}
    said = [r.getMessage() for r in caplog.records if "LCPDetector's front runs eagerly from now on" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("capturing LCPDetector's front failed: CUDA error")


class Cycle:
    """Garbage only the cyclic collector frees, as make_graphed_callables' graphs are once dropped."""

    def __init__(self, freed: list):
        self.me, self.freed = self, freed

    def __del__(self):
        self.freed.append(gc.isenabled())


def test_a_capture_runs_after_a_collection_with_the_collector_paused(monkeypatch):
    """On an H200 a crux epoch's capture failed when the collector destroyed the graphs of the epoch
    before in the middle of it: dropped graphs must be gone before a capture starts, and nothing
    may be collected during it."""
    model = tiny_detector().eval()
    freed, seen = [], []
    Cycle(freed)

    def failing_make_graphed_callables(front, sample, **kwargs):
        seen.append((list(freed), gc.isenabled()))
        raise RuntimeError("CUDA error: operation failed due to a previous error during capture")

    monkeypatch.setattr(torch.cuda, "make_graphed_callables", failing_make_graphed_callables)
    with pytest.raises(GraphCaptureError, match="operation failed due to a previous error during capture"):
        model.front_graphs.capture(model, batch()["img"])
    assert seen == [([True], False)]  # the cycle freed before the capture, the collector off during it
    assert gc.isenabled()


def test_the_collector_pause_restores_what_it_found():
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(KeyError), collector_paused():
        raise KeyError("a failed capture")
    assert gc.isenabled()


def test_released_generators_keep_their_seed_and_offset():
    class Generator:
        def __init__(self, state):
            self.state, self.calls = state, []

        def clone_state(self):
            return Generator(dict(self.state))

        def graphsafe_set_state(self, other):
            self.calls.append(other.state)
            self.state = other.state

    generators = [Generator({"seed": 3, "offset": 8}), Generator({"seed": 4, "offset": 0})]
    states = [g.state for g in generators]
    release_generators(generators)
    for generator, state in zip(generators, states, strict=True):
        assert generator.calls == [state] and generator.state == state and generator.state is not state


class Fp16Probe(BaseModule):
    """An mmcv module with an auto_fp16 forward, as mmdet's FPN has, that reports autocast's cache switch."""

    def __init__(self):
        super().__init__()
        self.fp16_enabled = True

    @auto_fp16()
    def forward(self, x):
        return torch.is_autocast_cache_enabled()


def test_mmcv_auto_fp16_casts_without_the_cache_while_capturing():
    """With the cache, a capture would reuse casts of a warm-up run that the outer autocast region frees."""
    from mmcv.runner import fp16_utils

    probe, x = Fp16Probe(), torch.zeros(1)
    before = fp16_utils.autocast
    with pytest.warns(UserWarning):  # autocast for CUDA on a machine without it
        assert probe(x) is True
        with capture_safe_autocast():
            assert probe(x) is False
    assert fp16_utils.autocast is before and probe(x) is True


def step_outputs(model, data, steps):
    out = []
    for _ in range(steps):
        losses, grads = losses_and_grads(model, data, type(model).forward_train)
        out.append((losses, grads))
    return out


def assert_close(first, second, rtol):
    assert first.keys() == second.keys()
    for name in first:
        for x, y in zip(as_list(first[name]), as_list(second[name]), strict=True):
            assert (x.float() - y.float()).abs().max() <= rtol * y.float().abs().max().clamp(min=1e-6), name


@cuda
def test_captured_crux_steps_and_tests_match_eager_ones_on_a_gpu():
    data = batch_on("cuda", batch())
    graphed = tiny_detector().cuda()
    eager = tiny_detector(graph_capture=dict(enabled=False)).cuda()
    eager.load_state_dict(graphed.state_dict())
    steps = graphed.front_graphs.warmup_iters + 3  # warm-up, capture (checked), replays
    for (losses, grads), (eager_losses, eager_grads) in zip(
        step_outputs(graphed, data, steps), step_outputs(eager, data, steps), strict=True
    ):
        assert_close(losses, eager_losses, 1e-3)
        assert_close(grads, eager_grads, 1e-3)
    key = front_key(graphed, data["img"])
    assert list(graphed.front_graphs.graphs) == [key]

    graphed.set_train_mode("catch_up_learner")
    assert graphed.front_graphs.graphs == {}
    graphed.set_train_mode("crux_learner")
    step_outputs(graphed, data, graphed.front_graphs.warmup_iters + 1)
    assert list(graphed.front_graphs.graphs) == [key]  # captured again for the crux mode's parameters

    graphed.eval(), eager.eval()
    with torch.no_grad():
        for _ in range(graphed.front_graphs.warmup_iters + 2):
            detections = graphed.simple_test(data["img"], data["img_metas"])
        reference = eager.simple_test(data["img"], data["img_metas"])
    assert len(graphed.front_graphs.graphs) == 2
    for ours, theirs in zip(detections[0], reference[0], strict=True):
        assert ours.shape == theirs.shape and abs(ours - theirs).max() < 1e-2


@cuda
def test_a_graph_captured_under_mmdet_fp16_matches_eager_fp16():
    data = batch()
    data = dict(
        img=data["img"].cuda(),
        img_metas=data["img_metas"],
        gt_bboxes=[b.cuda() for b in data["gt_bboxes"]],
        gt_labels=[label.cuda() for label in data["gt_labels"]],
    )
    graphed, eager = tiny_detector().cuda(), tiny_detector(graph_capture=dict(enabled=False)).cuda()
    eager.load_state_dict(graphed.state_dict())
    results = []
    for model in (graphed, eager):
        wrap_fp16_model(model)
        for _ in range(model.front_graphs.warmup_iters + 2):
            torch.manual_seed(1)
            losses = model(**data, return_loss=True)
        results.append({name: as_list(value) for name, value in losses.items()})
    assert len(graphed.front_graphs.graphs) == 1
    assert_close(results[0], results[1], 3e-2)


def test_lcp_train_gives_each_forward_no_gradient_kept_from_the_step_before(workspace, tmp_path, monkeypatch):
    """mmcv's OptimizerHook clears the gradients after the forward, so every crux-mode forward after the
    first found the last step's and ran eagerly: the front's graphs never ran in a training. lcp train
    now clears them before the forward where the optimizer hook clears them every step anyway, with
    the same weights as clearing them after the step; accumulation over steps keeps them."""
    from lcp.cli import main as lcp

    reasons = []
    ineligible = FrontGraphs.ineligible

    def recorded(self, detector, img):
        reason = ineligible(self, detector, img)
        if detector.training and detector.train_mode == "crux_learner":
            reasons.append(reason)
        return reason

    monkeypatch.setattr(FrontGraphs, "ineligible", recorded)
    # one catch-up epoch, then a crux epoch of two steps (two training images, one per batch)
    options = [f"data_root={workspace / 'demo'}/", "runner.max_epochs=2", "data.samples_per_gpu=1", "load_from=None"]
    cumulative = ["+optimizer_config.type=GradientCumulativeOptimizerHook", "+optimizer_config.cumulative_iters"]
    trained = {}
    for name, optimizer_hook in {
        "every step": [],
        "after the step": [*cumulative[:1], f"{cumulative[1]}=1"],  # clears after the step: no hook added
        "over two steps": [*cumulative[:1], f"{cumulative[1]}=2"],
    }.items():
        reasons.clear()
        work_dir = tmp_path / name.replace(" ", "_")
        argv = ["train", "config/mmdet/lcp_tiny_demo.py", "--work-dir", str(work_dir), "--no-validate"]
        assert lcp([*argv, "--cfg-options", *options, *optimizer_hook]) == 0
        trained[name] = (list(reasons), torch.load(work_dir / "latest.pth", weights_only=False)["state_dict"])
    assert trained["every step"][0] == ["not on CUDA"] * 2  # on a GPU: a graph from the warm-up on
    kept = "gradients kept from an earlier step (zero them with set_to_none, mmcv's default)"
    assert trained["over two steps"][0] == ["not on CUDA", kept]
    every_step, after_the_step = trained["every step"][1], trained["after the step"][1]
    assert every_step.keys() == after_the_step.keys()
    assert all(torch.equal(every_step[key], after_the_step[key]) for key in every_step)


def test_the_step_before_keeps_no_autograd_graph_alive_into_the_next_forward():
    """mmcv's runner holds the last step's outputs until the next step returns; their loss keeps that
    step's graph, and with it the gradient accumulators a capture must not reuse: dropped first."""
    import weakref

    from lcp.hooks.gradients import ReleaseGradientsHook

    weight = torch.nn.Parameter(torch.ones(3))
    loss = (2 * weight).sum()
    loss.backward()
    runner = types.SimpleNamespace(optimizer=torch.optim.SGD([weight], lr=0.1), outputs=dict(loss=loss))
    kept = weakref.ref(loss)
    del loss
    ReleaseGradientsHook().before_train_iter(runner)
    assert kept() is None and weight.grad is None and runner.outputs == {}
