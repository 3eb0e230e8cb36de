"""What only a GPU can answer about lcp's own commands, on the tiny demo, one line each.

bench/bench_lcp_model.py measures the model in its own loop; these run the real `lcp train` and
`lcp test` (bench/gpu/run.sh runs this before the bench, about a minute):

  train capture   does `lcp train` capture LCP's front as a CUDA graph in crux mode? On an H200
                  (2026-11-30) its first capture failed (cudaErrorStreamCaptureInvalidated) where
                  the bench's succeeded; it now falls back to the eager front with a warning
                  (lcp/models/graph_capture.py), and lcp train drops the last step's outputs
                  before the next forward (lcp/hooks/gradients.py), the suspected cause
  test capture    the same for `lcp test`
  graphs = eager  `lcp test`'s detections with the front's graphs and without: the largest
                  difference of a box coordinate or score, and whether the counts match
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
from study import LCP, run  # noqa: E402  (bench/gpu is not a package)

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
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

    result = {"train capture": verdict((work / "train.out").read_text(errors="replace"))}
    test("test", "--out", str(work / "graphs.pkl"))
    result["test capture"] = verdict((work / "test.out").read_text(errors="replace"))
    test("eager", "--out", str(work / "eager.pkl"), options=("model.graph_capture.enabled=False",))
    graphs, eager = (pickle.loads((work / f"{name}.pkl").read_bytes()) for name in ("graphs", "eager"))
    result["graphs = eager"] = largest_difference(graphs, eager)
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
        print(f"{check}: {said}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
