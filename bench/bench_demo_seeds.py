"""Baseline vs LCP on the demo scene over several seeds: mean AP, spread, paired difference.

Runs the demo scene's own settings (config/config.yaml, scene `demo`): the generated data,
one pretrained tiny detector (shared by all seeds, as in the workflow), then per seed the
baseline and LCP fine-tuning with `lcp train --seed N` and their evaluation with
`lcp test`. Prints per seed AP of both, LCP - baseline, and the mean and standard
deviation over seeds, plus the crux learner's final mask statistics where `lcp test`
reports them. Pass seeds you did not tune the demo on.

    python bench/bench_demo_seeds.py --seeds 10 11 12 [--work bench-out/demo-seeds]
    python bench/bench_demo_seeds.py --tiny       # a few images and one epoch each: smoke test
    ... --lcp-option model.start_as_pretrained=False   # compare a variant of LCP's settings
    ... --lcp-start START.pth     # LCP starts from this checkpoint instead of the pretrained one
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("baseline", "lcp")
# A CPU training's result depends on torch's thread count (seed 0's LCP: 19.9 AP on 1 thread,
# 19.2 on 2). The workflow runs the demo's trainings with OMP_NUM_THREADS = the rule's cpus, 1:
# so does this script, unless OMP_NUM_THREADS says otherwise.
ENV = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


def demo_config(config_file: Path, scene: str, data_dir: Path) -> dict:
    """The workflow config with its data under `data_dir`; the scene must be a generated demo scene."""
    config = yaml.safe_load(config_file.read_text())
    if "demo" not in config["scenes"].get(scene, {}):
        sys.exit(f"{config_file}: scenes.{scene} is not a generated demo scene")
    return dict(config, data_dir=str(data_dir))


def run(command: list[str], log: Path) -> float:
    started = time.perf_counter()
    with log.open("w") as out:
        result = subprocess.run(command, check=False, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=ENV)
    if result.returncode != 0:
        sys.exit(f"failed ({log}): {' '.join(command)}")
    return time.perf_counter() - started


def train(lcp: str, scene: dict, step: str, work: Path, seed: int, options: list[str], load_from: Path | None) -> Path:
    """Train once per folder: a folder trained (or started) with other settings is refused, not reused."""
    checkpoint = work / "latest.pth"
    command = [lcp, "train", scene[step]["config"], "--seed", str(seed), "--work-dir", str(work), "--no-validate"]
    command += ["--auto-resume"] + (["--load-from", str(load_from)] if load_from is not None else [])
    command += ["--cfg-options", *options]
    record = work / "command.json"
    if record.is_file() and json.loads(record.read_text()) != command[1:]:  # [0]: where lcp is installed
        sys.exit(f"{record}: {work} was trained with other settings; give this run another --work")
    if not checkpoint.is_file():
        work.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(command[1:]))
        seconds = run(command, work / "train.out")
        print(f"  trained {step} seed {seed} in {seconds:.0f} s", flush=True)
    return checkpoint


def evaluate(lcp: str, scene: dict, step: str, checkpoint: Path, options: list[str]) -> dict:
    out = checkpoint.parent / "eval.json"
    if not out.is_file():
        run(
            [lcp, "test", scene[step]["config"], str(checkpoint), "--eval-out", str(out), "--cfg-options", *options],
            checkpoint.parent / "test.out",
        )
    return json.loads(out.read_text())


def spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:6.2f} ± {std:4.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12], help="fine-tuning seeds")
    parser.add_argument("--scene", default="demo", help="a generated scene of the config (default demo)")
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "bench-out" / "demo-seeds",
        help="data, checkpoints and evaluations; finished steps are reused",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra --cfg-options for every step (pretraining, baseline, LCP)",
    )
    parser.add_argument(
        "--baseline-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra --cfg-options for the baseline",
    )
    parser.add_argument(
        "--lcp-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra --cfg-options for LCP (e.g. model.start_as_pretrained=False)",
    )
    parser.add_argument(
        "--lcp-start",
        type=Path,
        help="checkpoint LCP starts from instead of the pretrained detector (e.g. bench/half_fog.py start);"
        " LCP's runs then go to WORK/lcp_<its stem>/",
    )
    parser.add_argument(
        "--lcp-name",
        help="LCP's runs go to WORK/lcp_NAME/: a variant of LCP (--lcp-option) beside the default one, "
        "sharing the pretrained detector and the baseline",
    )
    parser.add_argument("--tiny", action="store_true", help="12 images of 128 px, one epoch per step: a smoke test")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    from lcp.workflow.commands import cfg_options
    from lcp.workflow.paths import dataset_of

    config = demo_config(args.config, args.scene, args.work.resolve())
    scene = config["scenes"][args.scene]
    lcp = str(Path(sys.executable).parent / "lcp")
    data = args.work.resolve() / dataset_of(config, args.scene)
    extra = {
        "pretrain": list(args.option),
        "baseline": args.option + args.baseline_option,
        "lcp": args.option + args.lcp_option,
    }
    if args.tiny:
        for step in extra:
            extra[step] += ["runner.max_epochs=1", "evaluation.interval=1", "lr_config.step=[1]"]
        extra["lcp"] += ["mode_plan.num_epoch=[1]", "mode_plan.modes=[crux_learner]"]
    if not data.is_dir():
        demo = dict(scene["demo"], **({"num_images": 12, "size": 128} if args.tiny else {}))
        command = [lcp, "data", "demo", "--out", str(data), "--no-progress"]
        command += [arg for key, value in demo.items() for arg in (f"--{key.replace('_', '-')}", str(value))]
        args.work.mkdir(parents=True, exist_ok=True)
        run(command, args.work / "data.out")

    def options(step: str) -> list[str]:  # what the workflow gives the step, then this run's extras
        return cfg_options(config, args.scene, step) + extra[step]

    pretrained = train(lcp, scene, "pretrain", args.work / "pretrain", 0, options("pretrain"), None)

    lcp_dir = f"lcp_{args.lcp_name or args.lcp_start.stem}" if args.lcp_name or args.lcp_start else "lcp"
    rows = []
    for seed in args.seeds:
        row = {"seed": seed}
        for method in METHODS:
            checkpoint = train(
                lcp,
                scene,
                method,
                args.work / (lcp_dir if method == "lcp" else method) / f"seed{seed}",
                seed,
                options(method),
                args.lcp_start if method == "lcp" and args.lcp_start else pretrained,
            )
            evaluation = evaluate(lcp, scene, method, checkpoint, options(method))
            row[method] = 100 * evaluation["bbox_mAP"]
            if method == "lcp" and evaluation.get("crux_health"):
                row["crux_health"] = evaluation["crux_health"]
        rows.append(row)
        # as each seed ends, so that a run cut short keeps what it measured
        print(f"  seed {seed}: baseline {row['baseline']:.2f}, LCP {row['lcp']:.2f}", flush=True)
        if args.json:
            args.json.write_text(json.dumps({"scene": args.scene, "seeds": args.seeds, "rows": rows}, indent=1))

    print(f"\n{args.scene}: AP over seeds {args.seeds}")
    print(f"{'seed':>6} {'baseline':>9} {'LCP':>7} {'LCP-base':>9}  crux mask (mean, spatial std)")
    for row in rows:
        health = row.get("crux_health") or {}
        mask = (
            (
                f"{health['mask_mean']:.3f}, {health['mask_spatial_std']:.3f}"
                + (" COLLAPSED" if health.get("collapsed") else "")
            )
            if health
            else "-"
        )
        print(f"{row['seed']:>6} {row['baseline']:9.2f} {row['lcp']:7.2f} {row['lcp'] - row['baseline']:+9.2f}  {mask}")
    differences = [row["lcp"] - row["baseline"] for row in rows]
    print(
        f"{'mean':>6} {spread([r['baseline'] for r in rows])}  LCP {spread([r['lcp'] for r in rows])}"
        f"  paired LCP-baseline {spread(differences)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
