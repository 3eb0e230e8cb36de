"""What only a GPU can answer about lcp's own commands, on the tiny demo, one line each.

bench/bench_lcp_model.py measures the model in its own loop; these run the real `lcp train` and
`lcp test` (bench/gpu/run.sh runs this before the bench, about a minute):

  collector in capture   the failure mode seen on an H200 (2026-11-30), in plain torch: a CUDA
                  graph left in a reference cycle, destroyed by Python's collector in the middle of
                  another capture; and what a random op does after that failed capture, before
                  and after lcp's release_generators
  capture after switch    LCP's front captured again after a mode switch dropped its graphs, with a
                  collection forced inside the capture (lcp's capture collects first); and the
                  same with that first collection switched off, the control
  failed capture  a capture made to fail (an illegal CUDA call inside it): the training steps after
                  it must run eagerly, random sampling included
  train capture   does `lcp train` capture LCP's front as a CUDA graph in crux mode?
  test capture    the same for `lcp test`
  graphs = eager  `lcp test`'s detections with the front's graphs and without: the largest
                  difference of a box coordinate or score, and whether the counts match
  eager = eager   the control: two eager runs of `lcp test` compared the same way (on an H200 the
                  detection counts of graphs and eager once differed, with boxes and scores
                  otherwise within 1e-3; this says whether two eager processes differ as much)
  fp16            `lcp test --fp16` AP against fp32 (issue 16: within 0.3)
  --gpu-id        a GPU number past the visible ones: one line, not a traceback

    python bench/gpu/gpu_checks.py --work DIR [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study import LCP, ROOT, run  # noqa: E402  (bench/gpu is not a package)

CAPTURED = "graph capture: LCPDetector's front captured"
FELL_BACK = "LCPDetector's front runs eagerly from now on"
FOREVER = float("inf")


def verdict(log: str) -> str:
    if FELL_BACK in log:
        line = next(line for line in log.splitlines() if FELL_BACK in line)
        return "FAILED, ran eagerly: " + line.split(" - ", 3)[-1][:600]
    if CAPTURED in log:
        return "captured"
    return "no capture attempted (no CUDA, or switched off)"


def largest_difference(first: list, second: list) -> str:
    """Detections of two runs (mmdet's results: per image, per class, an array of [x1, y1, x2, y2, score])."""
    worst, counts_match = 0.0, True
    for image_a, image_b in zip(first, second, strict=True):
        for a, b in zip(image_a, image_b, strict=True):
            if a.shape != b.shape:
                counts_match = False
            elif a.size:
                worst = max(worst, float(np.abs(a - b).max()))
    return f"largest difference {worst:.3g}" + ("" if counts_match else ", DETECTION COUNTS DIFFER")


def last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:400] if lines else "(no output)"


def first_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}"


def collector_in_capture() -> str:
    import gc

    import torch

    from lcp.models.graph_capture import release_generators

    layer, x = torch.nn.Linear(64, 64).cuda(), torch.randn(8, 64, device="cuda")
    layer(x)  # cuBLAS initialises outside any capture
    old = torch.cuda.CUDAGraph()
    with torch.cuda.graph(old):
        layer(x)
    cycle = [old]
    cycle.append(cycle)
    del old, cycle
    try:
        with torch.cuda.graph(torch.cuda.CUDAGraph()):
            layer(x)
            gc.collect()
        said = "captured"
    except Exception as error:  # noqa: BLE001  (what CUDA says is the finding)
        said = "capture FAILED: " + first_line(error)
    torch.cuda.synchronize()
    try:
        torch.rand(4, device="cuda")
        return said + "; random ops work after it"
    except RuntimeError as error:
        said += "; the next random op FAILS: " + first_line(error)
    release_generators(torch.cuda.default_generators)
    try:
        torch.rand(4, device="cuda")
        return said + "; after release_generators they work"
    except RuntimeError as error:
        return said + "; after release_generators they still FAIL: " + first_line(error)


def tiny_crux_detector():
    """A tiny LCP detector in crux mode on the GPU and a batch for it (tests/helpers' model and batch)."""
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from helpers.model_configs import batch, batch_on, build, tiny_lcp_cfg

    torch.manual_seed(0)
    model = build(tiny_lcp_cfg())
    model.init_weights()
    model.set_train_mode("crux_learner")
    return model.cuda().train(), batch_on("cuda", batch())


def training_steps(model, data, steps: int) -> list[float]:
    losses = []
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        parts = model.forward_train(data["img"], data["img_metas"], data["gt_bboxes"], data["gt_labels"])
        loss, _ = model._parse_losses(parts)
        loss.backward()
        losses.append(float(loss))
    return losses


def inside_capture(action):
    """Make StaticFront.forward run `action` while the stream is being captured; returns the undo."""
    import torch

    from lcp.models.graph_capture import StaticFront

    original = StaticFront.forward

    def forward(self, img):
        if torch.cuda.is_current_stream_capturing():
            action()
        return original(self, img)

    StaticFront.forward = forward
    return lambda: setattr(StaticFront, "forward", original)


def capture_after_switch(collect_first: bool = True) -> str:
    """collect_first=False: lcp's collection before a capture switched off, the control."""
    import contextlib
    import gc

    from lcp.models import graph_capture

    model, data = tiny_crux_detector()
    warmup = model.front_graphs.warmup_iters
    training_steps(model, data, warmup + 1)
    if not model.front_graphs.graphs:
        return "the first capture did not happen"
    model.set_train_mode("catch_up_learner")
    model.set_train_mode("crux_learner")
    undo = inside_capture(gc.collect)
    paused = graph_capture.collector_paused
    if not collect_first:
        graph_capture.collector_paused = contextlib.nullcontext
    try:
        losses = training_steps(model, data, warmup + 3)
    finally:
        undo()
        graph_capture.collector_paused = paused
    held = [key for key, graph in model.front_graphs.graphs.items() if graph is not None]
    state = "captured again" if held else "FELL BACK to eager" if not model.front_graphs.enabled else "not captured"
    return f"{state}; {len(losses)} steps, last loss {losses[-1]:.4f}"


def failed_capture_recovers() -> str:
    import torch

    model, data = tiny_crux_detector()
    undo = inside_capture(torch.cuda.synchronize)  # not allowed while capturing
    try:
        losses = training_steps(model, data, model.front_graphs.warmup_iters + 3)
    finally:
        undo()
    if model.front_graphs.enabled:
        return "the capture did not fail (nothing checked)"
    finite = all(loss == loss and abs(loss) != float("inf") for loss in losses)
    return f"fell back; {len(losses)} steps ran, losses {'finite' if finite else 'NOT FINITE'}"


def in_process_checks() -> dict[str, str]:
    result = {}
    for name, check in (
        ("collector in capture", collector_in_capture),
        ("capture after switch", capture_after_switch),
        ("capture after switch, no collection first", lambda: capture_after_switch(collect_first=False)),
        ("failed capture", failed_capture_recovers),
    ):
        try:
            result[name] = check()
        except Exception as error:  # noqa: BLE001  (each check reports; the next still runs)
            result[name] = "RAISED " + first_line(error)
        print(f"{name}: {result[name]}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    first = in_process_checks()
    data = [f"data_root={work / 'demo'}/"]
    scene = [*LCP, "data", "demo", "--out", str(work / "demo"), "--num-images", "60", "--no-progress"]
    run(scene, work / "data.out", FOREVER)
    pretrain = [*LCP, "train", "config/mmdet/cascade_rcnn_tiny_demo.py", "--work-dir", str(work / "pretrain")]
    run([*pretrain, "--no-validate", "--cfg-options", *data, "runner.max_epochs=2"], work / "pretrain.out", FOREVER)
    lcp = [*LCP, "train", "config/mmdet/lcp_tiny_demo.py", "--work-dir", str(work / "lcp"), "--no-validate"]
    lcp += ["--load-from", str(work / "pretrain/latest.pth"), "--cfg-options", *data]
    plan = ["mode_plan.num_epoch=[1,1]", "mode_plan.modes=[catch_up_learner,crux_learner]"]
    run([*lcp, "runner.max_epochs=2", *plan, "lr_config.step=[2]"], work / "train.out", FOREVER)

    def test(name: str, *extra: str, options: tuple[str, ...] = ()) -> Path:
        out = work / f"{name}.json"
        command = [*LCP, "test", "config/mmdet/lcp_tiny_demo.py", str(work / "lcp/latest.pth"), "--eval-out", str(out)]
        command += [*extra, "--cfg-options", *data, *options]
        run(command, work / f"{name}.out", FOREVER)
        return out

    result = {**first, "train capture": verdict((work / "train.out").read_text(errors="replace"))}
    test("test", "--out", str(work / "graphs.pkl"))
    result["test capture"] = verdict((work / "test.out").read_text(errors="replace"))
    test("eager", "--out", str(work / "eager.pkl"), options=("model.graph_capture.enabled=False",))
    graphs, eager = (pickle.loads((work / f"{name}.pkl").read_bytes()) for name in ("graphs", "eager"))
    result["graphs = eager"] = largest_difference(graphs, eager)
    test("eager_again", "--out", str(work / "eager_again.pkl"), options=("model.graph_capture.enabled=False",))
    result["eager = eager"] = largest_difference(eager, pickle.loads((work / "eager_again.pkl").read_bytes()))
    ap = json.loads((work / "test.json").read_text())["bbox_mAP"]
    try:
        fp16 = json.loads(test("fp16", "--fp16").read_text())["bbox_mAP"]
        result["fp16"] = f"AP {100 * fp16:.2f} against fp32 {100 * ap:.2f} ({100 * (fp16 - ap):+.2f})"
    except RuntimeError:
        result["fp16"] = "refused: " + last_line(work / "fp16.out")
    try:
        test("gpu_id", "--gpu-id", "99")
        result["--gpu-id"] = "--gpu-id 99 ran (no GPU here: the id is ignored)"
    except RuntimeError:
        result["--gpu-id"] = "refused: " + last_line(work / "gpu_id.out")
    for check, said in result.items():
        if check not in first:  # those were said as they ran
            print(f"{check}: {said}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
