"""`lcp compare`: our AP / AP50 / AP75 per scene and method beside the paper's LCP numbers,
and each scene's robustness sweep summarised as mmdetection does (mPC, rPC).

Reads the evaluation runs (tag lcp.step = evaluate) of the lcp/<scene> experiments through
mlflow.search_runs and keeps the newest run per scene, method, training seed (tag lcp.seed)
and variant (tag lcp.variant: a sweep's severity, e.g. beta_0.02; none for the scene's test
set). From the test-set runs: AP in percent (mean and standard deviation over seeds where
several), the published LCP-50 results (Fu et al., TCSVT 2024) for the scenes the paper
reports, the differences ours - paper, and LCP's gain over the baseline of the same scene,
paired by seed; the statistics are lcp.report.metrics', as in the per-scene report. From the
sweep runs: lcp.tracking.robustness' mPC and rPC.

Prints the tables and writes them to a folder of its own (default results/compare), replaced
as a whole on every run: compare.md, compare.csv, compare_seeds.csv (the run of every seed),
compare.png and, with a sweep, compare_robustness.csv and compare_robustness_seeds.csv.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from lcp.errors import LCPError
from lcp.tracking import settings

HELP = (
    "compare evaluated runs (AP, AP50, AP75 per scene and method, over seeds) with the paper's LCP results, "
    "and summarise robustness sweeps (mPC, rPC)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--experiment",
        action="append",
        default=[],
        metavar="NAME",
        help="MLflow experiment (repeatable; default: every lcp/* experiment)",
    )
    parser.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only runs with this tag value (repeatable), e.g. git.dirty=false",
    )
    since = parser.add_mutually_exclusive_group()
    since.add_argument("--since", metavar="ISO", help="only runs started at or after this time, e.g. 2026-11-01")
    since.add_argument("--days", type=float, metavar="N", help="only runs started in the last N days")
    parser.add_argument(
        "--out-dir",
        default=str(settings.project_root() / "results" / "compare"),
        help="folder of the tables and plot, replaced on every run (default: results/compare); "
        "a folder lcp did not write is refused",
    )
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking URI when MLFLOW_TRACKING_URI is not set (default: results/mlflow/mlflow.db)",
    )


def since_millis(since: str | None, days: float | None) -> int | None:
    if days is not None:
        if not days > 0:  # also NaN
            raise LCPError(f"--days {days}: must be a positive number of days")
        try:
            return int((dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).timestamp() * 1000)
        except (OverflowError, ValueError):  # inf, or further back than year 1
            raise LCPError(f"--days {days}: reaches back before year 1; leave --days out for every run") from None
    if since is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(since)
    except ValueError:
        raise LCPError(f"--since {since!r}: not an ISO date/time (e.g. 2026-11-01 or 2026-11-01T12:00)") from None
    try:
        if moment.tzinfo is None:
            moment = moment.astimezone()  # a naive time means local time
        return int(moment.timestamp() * 1000)
    except (OverflowError, OSError, ValueError):  # 0001-01-01: converting it to local time steps into year 0
        raise LCPError(f"--since {since!r}: too early a date for this machine's clock; leave --since out") from None


def parse_tags(items: list[str]) -> dict[str, str]:
    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LCPError(f"--tag {item!r}: expected KEY=VALUE")
        kind, dot, plain = key.partition(".")
        if dot and kind in ("tags", "params", "metrics"):  # MLflow's search syntax: lcp writes the filter itself
            plain = plain.strip("`")
            if kind == "tags":
                raise LCPError(f"--tag {item!r}: give the tag's plain key, --tag {plain}={value}")
            raise LCPError(f"--tag {item!r}: --tag filters tags by their plain key (e.g. lcp.method=lcp), not {kind}")
        if "'" in value or "`" in key:
            raise LCPError(f"--tag {item!r}: quotes are not supported in tag filters")
        tags[key] = value
    return tags


def main(args: argparse.Namespace) -> int:
    from lcp.tracking import comparison_output
    from lcp.tracking.comparison import compare, readable_store

    out_dir = Path(args.out_dir)
    uri = readable_store(args.tracking_uri)
    comparison_output.check_out_dir(out_dir, uri)
    result = compare(uri, args.experiment, parse_tags(args.tag), since_millis(args.since, args.days))
    print(comparison_output.markdown(result), end="")
    written = comparison_output.write_comparison(result, out_dir, uri)
    print(f"written to {out_dir}: {', '.join(written)}")
    return 0
