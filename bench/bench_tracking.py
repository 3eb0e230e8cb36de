"""What MLflow tracking costs a training iteration: TrackedRun (what LCPMlflowLoggerHook uses)
logging one iteration's metrics (8 loss terms, lr, momentum, throughput) against

- the local sqlite store (results/mlflow/mlflow.db layout, in a temporary folder),
- a live `mlflow server` on 127.0.0.1 (started here, --workers 1),
- a dead server (connection refused: everything goes to the pending journal),

each with the hook's default batching (flush every 5 s) and unbatched (a request per
iteration). Prints milliseconds per iteration and the ratio to a training iteration of
--iteration-ms (default 162 ms: LCP R50-FPN, batch 2, fp32 on an H100, measured 12.3 img/s).

    python bench/bench_tracking.py [--iterations 2000]
    python bench/bench_tracking.py --tiny      # 200 iterations
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

METRICS = [
    "loss",
    "kl_loss",
    "loss_rpn_cls",
    "loss_rpn_bbox",
    "s0.loss_cls",
    "s0.loss_bbox",
    "s1.loss_cls",
    "s2.loss_cls",
    "lr",
    "momentum",
    "img_per_s",
]


def time_logging(uri: str, work_dir: Path, iterations: int, flush_secs: float) -> float:
    """Seconds per iteration of log_metrics (+ the final flush) through a TrackedRun."""
    from lcp.tracking.run import TrackedRun

    run = TrackedRun(
        experiment="lcp/bench",
        run_name=f"bench/tracking/flush{flush_secs:g}",
        work_dir=work_dir,
        tracking_uri=uri,
        flush_secs=flush_secs,
    ).start()
    start = time.perf_counter()
    for step in range(1, iterations + 1):
        run.log_metrics({f"train/{name}": 1.0 / step for name in METRICS}, step=step)
    run.finish()
    return (time.perf_counter() - start) / iterations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--iteration-ms", type=float, default=162.0)
    parser.add_argument("--tiny", action="store_true", help="200 iterations")
    args = parser.parse_args()
    iterations = 200 if args.tiny else args.iterations
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    from mlflow_server import MlflowServer, free_port

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = MlflowServer(tmp / "server").start()
        try:
            stores = {
                "local sqlite": f"sqlite:///{tmp / 'local' / 'mlflow.db'}",
                "live server": server.uri,
                "dead server": f"http://127.0.0.1:{free_port()}",
            }
            print(
                f"{iterations} iterations x {len(METRICS)} metrics; ratio = tracking time / {args.iteration_ms:g} ms "
                "training iteration"
            )
            print(f"{'store':<14} {'flush':>8} {'ms/iter':>9} {'ratio':>8}")
            for name, uri in stores.items():
                for flush_secs in (5.0, 0.0):
                    seconds = time_logging(
                        uri, tmp / f"work-{name.replace(' ', '-')}-{flush_secs:g}", iterations, flush_secs
                    )
                    label = "5 s" if flush_secs else "each"
                    print(f"{name:<14} {label:>8} {1000 * seconds:9.3f} {1000 * seconds / args.iteration_ms:8.4f}")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
