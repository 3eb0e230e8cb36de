"""Does `lcp train` (and `lcp test`) capture LCPDetector's front as a CUDA graph on this GPU?

bench/bench_lcp_model.py captures the front in its own loop; on an H200 (2026-11-30) that worked
while `lcp train`'s first crux-mode capture failed (cudaErrorStreamCaptureInvalidated), which
now ends in a warning and an eager front (lcp/models/graph_capture.py). This runs the real
commands on the tiny demo: a 24-image scene, a one-epoch pretraining, an LCP training of one
catch-up and one crux epoch, and its test, then says per command whether the front was
captured, fell back or never tried. bench/gpu/run.sh runs it before the bench.

    python bench/gpu/capture_check.py --work DIR [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study import LCP, run  # noqa: E402  (bench/gpu is not a package)

CAPTURED = "graph capture: LCPDetector's front captured"
FELL_BACK = "LCPDetector's front runs eagerly from now on"


def verdict(log: str) -> str:
    if FELL_BACK in log:
        line = next(line for line in log.splitlines() if FELL_BACK in line)
        return "FAILED, ran eagerly: " + line.split(" - ", 3)[-1][:600]
    if CAPTURED in log:
        return "captured"
    return "no capture attempted (no CUDA, or switched off)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    forever = float("inf")
    data = [f"data_root={work / 'demo'}/"]
    run(
        [*LCP, "data", "demo", "--out", str(work / "demo"), "--num-images", "24", "--no-progress"],
        work / "data.out",
        forever,
    )
    pretrain = [*LCP, "train", "config/mmdet/cascade_rcnn_tiny_demo.py", "--work-dir", str(work / "pretrain")]
    run([*pretrain, "--no-validate", "--cfg-options", *data, "runner.max_epochs=1"], work / "pretrain.out", forever)
    lcp = [*LCP, "train", "config/mmdet/lcp_tiny_demo.py", "--work-dir", str(work / "lcp"), "--no-validate"]
    lcp += ["--load-from", str(work / "pretrain/latest.pth"), "--cfg-options", *data]
    plan = ["mode_plan.num_epoch=[1,1]", "mode_plan.modes=[catch_up_learner,crux_learner]"]
    run([*lcp, "runner.max_epochs=2", *plan, "lr_config.step=[2]"], work / "train.out", forever)
    test = [*LCP, "test", "config/mmdet/lcp_tiny_demo.py", str(work / "lcp/latest.pth"), "--eval", "bbox"]
    test += ["--cfg-options", *data]
    run(test, work / "test.out", forever)
    result = {step: verdict((work / f"{step}.out").read_text(errors="replace")) for step in ("train", "test")}
    for step, said in result.items():
        print(f"lcp {step}'s CUDA graph of the front: {said}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
