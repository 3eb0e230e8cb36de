"""`lcp compare`: our AP / AP50 / AP75 per scene and method beside the paper's LCP numbers.

Reads the evaluation runs (tag lcp.step = evaluate, no variant) of the lcp/<scene>
experiments through mlflow.search_runs, keeps the newest run per scene, method and training
seed (tag lcp.seed), and prints and writes compare.csv, compare.md and compare.png: AP
values in percent (mean and standard deviation over seeds where several), the published
LCP-50 results (Fu et al., TCSVT 2024) for the scenes the paper reports, the differences
ours - paper, and LCP's gain over the baseline of the same scene, paired by seed: the mean
and standard deviation of LCP - baseline over the seeds both were trained with.
compare_seeds.csv holds the run of every seed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from pathlib import Path

from lcp.errors import LCPError
from lcp.tracking import settings

HELP = "compare evaluated runs (AP, AP50, AP75 per scene and method) with the paper's LCP results"

# The authors' table, LCP with ResNet-50: (AP, AP50, AP75) in percent.
PUBLISHED_LCP = {
    "foggy_city": (29.0, 46.6, 30.2),
    "rainy_city": (27.6, 45.9, 27.9),
    "urpc": (47.8, 81.8, 50.3),
}
METRICS = (("AP", "test/bbox_mAP"), ("AP50", "test/bbox_mAP_50"), ("AP75", "test/bbox_mAP_75"))
COLUMNS = ["scene", "method", "seeds", "AP", "AP50", "AP75", "AP std", "AP50 std", "AP75 std",
           "paper AP", "paper AP50", "paper AP75", "dAP", "dAP50", "dAP75",
           "AP vs baseline", "AP vs baseline std", "paired seeds", "run name", "run id", "finished"]
OUTPUTS = ("compare.csv", "compare_seeds.csv", "compare.md", "compare.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", action="append", default=[], metavar="NAME",
                        help="MLflow experiment (repeatable; default: every lcp/* experiment)")
    parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                        help="only runs with this tag value (repeatable), e.g. git.dirty=false")
    since = parser.add_mutually_exclusive_group()
    since.add_argument("--since", metavar="ISO", help="only runs started at or after this time, e.g. 2026-11-01")
    since.add_argument("--days", type=float, metavar="N", help="only runs started in the last N days")
    parser.add_argument("--out-dir", default=str(settings.project_root() / "results" / "compare"),
                        help="where compare.csv/.md/.png go (default: results/compare)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow tracking URI when MLFLOW_TRACKING_URI is not set (default: results/mlflow/mlflow.db)")


def since_millis(since: str | None, days: float | None) -> int | None:
    if days is not None:
        if days <= 0:
            raise LCPError(f"--days {days}: must be positive")
        return int((dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)).timestamp() * 1000)
    if since is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(since)
    except ValueError:
        raise LCPError(f"--since {since!r}: not an ISO date/time (e.g. 2026-11-01 or 2026-11-01T12:00)") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a naive time means local time
    return int(moment.timestamp() * 1000)


def parse_tags(items: list[str]) -> dict[str, str]:
    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LCPError(f"--tag {item!r}: expected KEY=VALUE")
        if "'" in value or "`" in key:
            raise LCPError(f"--tag {item!r}: quotes are not supported in tag filters")
        tags[key] = value
    return tags


def filter_string(tags: dict[str, str], since_ms: int | None) -> str:
    clauses = [f"tags.`{settings.TAG_STEP}` = 'evaluate'"]
    clauses += [f"tags.`{key}` = '{value}'" for key, value in tags.items()]
    if since_ms is not None:
        clauses.append(f"attributes.start_time >= {since_ms}")
    return " AND ".join(clauses)


def find_experiment_ids(client, names: list[str]) -> list[str]:
    if names:
        ids = []
        for name in names:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise LCPError(f"--experiment {name!r}: no such experiment at {client.tracking_uri}")
            ids.append(experiment.experiment_id)
        return ids
    return [e.experiment_id for e in client.search_experiments(
        filter_string=f"name LIKE '{settings.EXPERIMENT_PREFIX}%'")]


def search_evaluations(tracking_uri: str, experiments: list[str], tags: dict[str, str], since_ms: int | None):
    """The evaluation runs as a pandas DataFrame (mlflow.search_runs), newest first."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment_ids = find_experiment_ids(client, experiments)
    if not experiment_ids:
        raise LCPError(f"{tracking_uri}: no lcp/* experiments; log runs first (lcp test --track ...)")
    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.search_runs(experiment_ids=experiment_ids, filter_string=filter_string(tags, since_ms),
                              order_by=["attributes.start_time DESC"], output_format="pandas")


def _value(row, column: str) -> float:
    value = row.get(column)
    return float(value) if value is not None and not (isinstance(value, float) and math.isnan(value)) else math.nan


def _seed_text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def seed_rows(runs):
    """The newest evaluation run per scene, method and seed (tag lcp.seed), AP values in percent.

    Runs without the tag (logged before seeds were tagged) count as one run of an unknown
    seed, and only where the scene and method have no tagged run.
    """
    import pandas as pd

    columns = ["scene", "method", "seed", *(name for name, _ in METRICS), "run name", "run id", "finished"]
    variant_column = f"tags.{settings.TAG_VARIANT}"
    if variant_column in runs:
        runs = runs[runs[variant_column].isna() | (runs[variant_column] == "")]
    needed = [f"tags.{settings.TAG_SCENE}", f"tags.{settings.TAG_METHOD}", "metrics.test/bbox_mAP"]
    if runs.empty or any(column not in runs for column in needed):
        return pd.DataFrame(columns=columns)
    runs = runs.dropna(subset=needed).sort_values("start_time", ascending=False)
    seed_column = f"tags.{settings.TAG_SEED}"
    seeds = runs[seed_column].map(_seed_text) if seed_column in runs else pd.Series("", index=runs.index)
    runs = runs.assign(_seed=seeds)
    tagged = set(map(tuple, runs.loc[runs["_seed"] != "", needed[:2]].itertuples(index=False)))
    untagged_kept = [tuple(key) not in tagged for key in runs[needed[:2]].itertuples(index=False)]
    runs = runs[(runs["_seed"] != "") | pd.Series(untagged_kept, index=runs.index)]
    newest = runs.drop_duplicates(subset=[*needed[:2], "_seed"], keep="first")
    rows = [{"scene": run[needed[0]], "method": run[needed[1]], "seed": run["_seed"],
             **{name: 100 * _value(run, f"metrics.{column}") for name, column in METRICS},
             "run name": run.get("tags.mlflow.runName"), "run id": run["run_id"],
             "finished": str(run["end_time"]) if "end_time" in run else None}
            for _, run in newest.iterrows()]
    table = pd.DataFrame(rows, columns=columns)
    order = table["seed"].map(lambda seed: int(seed) if seed.isdigit() else -1)
    table = table.assign(_order=order).sort_values(["scene", "method", "_order"]).drop(columns="_order")
    table["AP vs baseline"] = [_paired(table, row, "AP") for row in table.itertuples()]
    return table.reset_index(drop=True)


def _paired(table, row, metric: str) -> float:
    """This run's metric minus the baseline's of the same scene and seed (NaN without one)."""
    if row.method == "baseline":
        return math.nan
    baseline = table[(table["scene"] == row.scene) & (table["method"] == "baseline") & (table["seed"] == row.seed)]
    return getattr(row, metric) - baseline[metric].iloc[0] if len(baseline) else math.nan


def comparison_table(runs, seeds=None):
    """scene x method rows: ours (percent; mean and standard deviation over seeds), the paper's
    LCP numbers, the differences ours - paper, and the gain over the baseline: the mean and
    standard deviation of the per-seed differences to the baseline trained with the same seed."""
    import pandas as pd

    seeds = seed_rows(runs) if seeds is None else seeds
    rows = []
    for (scene, method), group in seeds.groupby(["scene", "method"], sort=True):
        ours = [group[name].mean() for name, _ in METRICS]
        spread = [group[name].std() for name, _ in METRICS]
        paper = PUBLISHED_LCP.get(scene) if method == "lcp" else None
        paper = list(paper) if paper else [math.nan] * 3
        gains = group["AP vs baseline"].dropna()
        newest = group.sort_values("finished", ascending=False, na_position="last").iloc[0]
        rows.append({"scene": scene, "method": method, "seeds": ", ".join(seed for seed in group["seed"] if seed),
                     **{name: value for (name, _), value in zip(METRICS, ours)},
                     **{f"{name} std": value for (name, _), value in zip(METRICS, spread)},
                     **{f"paper {name}": value for (name, _), value in zip(METRICS, paper)},
                     **{f"d{name}": o - p for (name, _), o, p in zip(METRICS, ours, paper)},
                     "AP vs baseline": gains.mean() if len(gains) else math.nan,
                     "AP vs baseline std": gains.std() if len(gains) > 1 else math.nan,
                     "paired seeds": len(gains) if method != "baseline" else math.nan,
                     "run name": newest["run name"], "run id": " ".join(group["run id"]),
                     "finished": newest["finished"]})
    return pd.DataFrame(rows, columns=COLUMNS)


def _number(value: float, signed: bool = False) -> str:
    if isinstance(value, float) and math.isnan(value):
        return ""
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _with_spread(value: float, spread: float, signed: bool = False) -> str:
    text = _number(value, signed)
    return f"{text} ± {spread:.1f}" if text and not math.isnan(spread) else text


def to_markdown(table, seeds=None) -> str:
    def cell(row, column) -> str:
        if column in ("AP", "AP50", "AP75"):
            return _with_spread(row[column], row[f"{column} std"])
        if column == "AP vs baseline":
            return _with_spread(row[column], row["AP vs baseline std"], signed=True)
        value = row[column]
        if isinstance(value, float):
            return _number(value, signed=column.startswith("d"))
        return "" if value is None else str(value)

    shown = ["scene", "method", "seeds", "AP", "AP50", "AP75", "paper AP", "paper AP50", "paper AP75",
             "dAP", "dAP50", "dAP75", "AP vs baseline", "run name"]
    lines = ["| " + " | ".join(shown) + " |", "|" + "|".join("---" for _ in shown) + "|"]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(cell(row, c) for c in shown) + " |")
    lines.append("")
    several = seeds is not None and seeds.groupby(["scene", "method"]).size().gt(1).any()
    spread = (" With several seeds: mean ± standard deviation over seeds; AP vs baseline is the mean ± "
              "standard deviation of the per-seed differences to the baseline trained with the same seed "
              "from the same pretrained detector." if several else "")
    lines.append("AP in percent (COCO bbox AP@[.5:.95], AP50, AP75 on the test set). paper: Fu et al., "
                 f"LCP, IEEE TCSVT 2024 (LCP-50); dX = ours - paper.{spread}")
    if several:
        per_seed = ["scene", "method", "seed", "AP", "AP50", "AP75", "AP vs baseline", "run id"]
        lines += ["", "Per seed:", "", "| " + " | ".join(per_seed) + " |", "|" + "|".join("---" for _ in per_seed) + "|"]
        for _, row in seeds.iterrows():
            cells = [str(row[c]) for c in ("scene", "method", "seed")]
            cells += [_number(row[c]) for c in ("AP", "AP50", "AP75")]
            cells += [_number(row["AP vs baseline"], signed=True), str(row["run id"])]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(table, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from lcp.io import atomic_path

    labels = [f"{row.scene}\n{row.method}" for row in table.itertuples()]
    positions = np.arange(len(labels))
    width = 0.4
    figure, axis = plt.subplots(figsize=(max(4.0, 1.4 * len(labels)), 3.8))
    axis.bar(positions - width / 2, table["AP"], width, yerr=table["AP std"].fillna(0.0), capsize=3,
             label="ours (AP, ± std over seeds)")
    axis.bar(positions + width / 2, table["paper AP"].fillna(0.0), width, label="paper LCP-50 (AP)", hatch="//",
             alpha=0.7)
    axis.set_xticks(positions, labels, fontsize=8)
    axis.set_ylabel("AP (%)")
    axis.legend(fontsize=8)
    axis.set_title("COCO bbox AP per scene and method")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)


def main(args: argparse.Namespace) -> int:
    from lcp.io import write_text

    out_dir = Path(args.out_dir)
    existing = [out_dir / name for name in OUTPUTS if (out_dir / name).exists()]
    if existing and not args.overwrite:
        raise LCPError(f"{existing[0]}: already exists; remove it or pass --overwrite")
    uri = settings.check_target(settings.resolve_target(args.tracking_uri)).uri
    settings.check_store_exists(uri)
    settings.apply_network_defaults()
    tags, since_ms = parse_tags(args.tag), since_millis(args.since, args.days)
    try:
        runs = search_evaluations(uri, args.experiment, tags, since_ms)
    except LCPError:
        raise
    except Exception as exc:  # noqa: BLE001  unreachable server, bad filter: one clear line
        raise LCPError(f"{uri}: could not search runs ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    seeds = seed_rows(runs)
    table = comparison_table(runs, seeds)
    if table.empty:
        raise LCPError(f"{uri}: no evaluation runs match (tag lcp.step=evaluate with test/bbox_mAP)")
    markdown = to_markdown(table, seeds)
    print(markdown, end="")
    write_text(out_dir / "compare.csv", table.to_csv(index=False, float_format="%.2f"))
    write_text(out_dir / "compare_seeds.csv", seeds.to_csv(index=False, float_format="%.2f"))
    write_text(out_dir / "compare.md", markdown)
    plot(table, out_dir / "compare.png")
    print(f"written: {', '.join(str(out_dir / name) for name in OUTPUTS)}")
    return 0
