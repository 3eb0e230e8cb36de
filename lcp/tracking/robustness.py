"""mmdetection's robustness summary of a scene's severity sweep: mPC and rPC per method, over seeds.

As in mmdetection's tools/analysis_tools/robustness_eval.py: mPC is the mean AP over every
degraded severity of the sweep (every parameter and value), rPC = mPC / P in percent.
mmdetection's P is the AP on the undegraded test images (its severity 0). The workflow
evaluates no undegraded test set (a severity of 0 is no degradation, which `lcp data synth`
refuses), so P here is the model's AP on the scene's own test set: the evaluation of the
same method and seed without a variant. An rPC above 100 % means the sweep is on average
milder than that test set.

Evaluations are named as in lcp.report.metrics: METHOD or METHOD/seedN for the test set,
the same with @PARAMETER_VALUE for a sweep point (lcp/seed1@beta_0.02). Each seed's mPC and
rPC come first; the mean and the sample standard deviation over seeds follow, and the
paired mPC difference LCP - baseline per seed, as the report does for AP.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

import pandas as pd

from lcp.report.metrics import parse_run_name, parse_sweep_name, percent

P = "P"  # the test-set AP rPC is relative to
SEED_COLUMNS = [P, "mPC", "rPC"]


def _method_and_seed(name: str) -> tuple[str, str]:
    """'lcp/seed1' -> ('lcp', '1'); 'lcp' -> ('lcp', '') (a run of no recorded seed)."""
    method, seed = parse_run_name(name)
    return method, "" if seed is None else str(seed)


def sweep_points(sweep: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """AP in percent, one row per (method, seed text) and one column per severity (`parameter_value`,
    ordered by parameter, then value)."""
    cells: dict[tuple[str, str], dict[str, float]] = {}
    order: dict[str, tuple[str, float]] = {}
    for name, evaluation in sweep.items():
        run, severity = name.split("@", 1)
        _, parameter, value = parse_sweep_name(name)
        cells.setdefault(_method_and_seed(run), {})[severity] = percent(evaluation.get("bbox_mAP"))
        order[severity] = (parameter, value)
    columns = sorted(order, key=order.__getitem__)
    index = sorted(cells, key=lambda key: (key[0], int(key[1]) if key[1] else -1))
    table = pd.DataFrame(
        [cells[key] for key in index],
        columns=columns,
        dtype=float,
        index=pd.MultiIndex.from_tuples(index, names=["method", "seed"]),
    )
    return table


def seed_summary(
    evaluations: Mapping[str, Mapping[str, Any]], sweep: Mapping[str, Mapping[str, Any]], where: str = ""
) -> pd.DataFrame:
    """Per (method, seed): the AP of each severity, P, mPC and rPC (percent). A seed that
    lacks one of the sweep's severities gets no mPC (said on stderr; a mean over fewer
    severities would not compare with the others); one without a test-set evaluation no rPC."""
    points = sweep_points(sweep)
    test_ap = {_method_and_seed(name): percent(evaluation.get("bbox_mAP")) for name, evaluation in evaluations.items()}
    points[P] = [test_ap.get(key, math.nan) for key in points.index]
    swept = [column for column in points.columns if column != P]
    points["mPC"] = points[swept].mean(axis=1, skipna=False)
    for (method, seed), row in points[points["mPC"].isna()].iterrows():
        missing = ", ".join(severity for severity in swept if math.isnan(row[severity]))
        run = f"{method}/seed{seed}" if seed else method
        print(f"warning: {where}{run}: no evaluation of {missing}; no mPC for it", file=sys.stderr)
    for method, seed in points.index[points["mPC"].notna() & points[P].isna()]:
        run = f"{method}/seed{seed}" if seed else method
        print(f"warning: {where}{run}: no evaluation on the test set; no P or rPC for it", file=sys.stderr)
    no_ap = points["mPC"].notna() & (points[P] <= 0)
    for method, seed in points.index[no_ap]:
        run = f"{method}/seed{seed}" if seed else method
        print(f"warning: {where}{run}: AP 0 on the test set; no rPC for it (mPC / P)", file=sys.stderr)
    points["rPC"] = (100 * points["mPC"] / points[P]).where(~no_ap)
    return points


def severities(seeds: pd.DataFrame) -> list[str]:
    """The severity columns of a `seed_summary` table, in sweep order."""
    return [column for column in seeds.columns if column not in SEED_COLUMNS]


def method_summary(seeds: pd.DataFrame) -> pd.DataFrame:
    """One row per method: the seeds with an mPC and a P, the mean and std over them of every
    column of `seed_summary` (std NaN for one seed; every column over the same seeds), and the
    paired mPC of LCP - baseline per seed."""
    rows = {}
    for method, group in seeds.groupby(level="method", sort=True):
        complete = group.dropna(subset=["mPC", P])
        row = {"seeds": ", ".join(seed for seed in complete.index.get_level_values("seed") if seed)}
        row.update(complete.mean(skipna=False).to_dict())  # rPC: none where a seed has none (P 0)
        row.update({f"{column} std": value for column, value in complete.std(skipna=False).items()})
        rows[method] = row
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = "method"
    gains = paired_mpc(seeds)
    summary["mPC vs baseline"] = math.nan
    summary["mPC vs baseline std"] = math.nan
    summary["paired seeds"] = math.nan
    if gains is not None and "lcp" in summary.index:
        summary.loc["lcp", ["mPC vs baseline", "mPC vs baseline std", "paired seeds"]] = [
            gains.mean(),
            gains.std() if len(gains) > 1 else math.nan,
            len(gains),
        ]
    return summary


def paired_mpc(seeds: pd.DataFrame) -> pd.Series | None:
    """LCP's mPC minus the baseline's, per seed both have one (None without such a seed)."""
    methods = set(seeds.index.get_level_values("method"))
    if not {"baseline", "lcp"} <= methods:
        return None
    gains = (seeds.loc["lcp", "mPC"] - seeds.loc["baseline", "mPC"]).dropna()
    return gains if len(gains) else None
