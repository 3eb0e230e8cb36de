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
import math
import sys
from pathlib import Path

from lcp.errors import LCPError
from lcp.tracking import settings
from lcp.tracking.relocate import warn_if_moved

HELP = ("compare evaluated runs (AP, AP50, AP75 per scene and method, over seeds) with the paper's LCP results, "
        "and summarise robustness sweeps (mPC, rPC)")

# The authors' table, LCP with ResNet-50: (AP, AP50, AP75) in percent.
PUBLISHED_LCP = {
    "foggy_city": (29.0, 46.6, 30.2),
    "rainy_city": (27.6, 45.9, 27.9),
    "urpc": (47.8, 81.8, 50.3),
}
# Column name (also the logged metric test/<name>, in percent: lcp.tracking.metrics) and the key of
# `lcp test --eval-out` (runs logged before AP was percent hold test/<key> as a fraction).
METRICS = (("AP", "bbox_mAP"), ("AP50", "bbox_mAP_50"), ("AP75", "bbox_mAP_75"))
COLUMNS = ["scene", "method", "seeds", "AP", "AP50", "AP75", "AP std", "AP50 std", "AP75 std",
           "paper AP", "paper AP50", "paper AP75", "dAP", "dAP50", "dAP75",
           "AP vs baseline", "AP vs baseline std", "paired seeds", "run name", "run id", "finished"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", action="append", default=[], metavar="NAME",
                        help="MLflow experiment (repeatable; default: every lcp/* experiment)")
    parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                        help="only runs with this tag value (repeatable), e.g. git.dirty=false")
    since = parser.add_mutually_exclusive_group()
    since.add_argument("--since", metavar="ISO", help="only runs started at or after this time, e.g. 2026-11-01")
    since.add_argument("--days", type=float, metavar="N", help="only runs started in the last N days")
    parser.add_argument("--out-dir", default=str(settings.project_root() / "results" / "compare"),
                        help="folder of the tables and plot, replaced on every run (default: results/compare); "
                             "a folder lcp did not write is refused")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow tracking URI when MLFLOW_TRACKING_URI is not set (default: results/mlflow/mlflow.db)")


def since_millis(since: str | None, days: float | None) -> int | None:
    if days is not None:
        if days <= 0:
            raise LCPError(f"--days {days}: must be positive")
        return int((dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).timestamp() * 1000)
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


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _percent(run, name: str, key: str) -> float:
    """The run's test/<name> (percent), else 100 x its test/<key> (a fraction), else NaN."""
    value = run.get(f"metrics.test/{name}")
    if _missing(value):
        value = run.get(f"metrics.test/{key}")
        value = None if _missing(value) else 100 * value
    return math.nan if value is None else float(value)


def _seed_text(value) -> str:
    return "" if _missing(value) else str(value)


def _texts(runs, column: str):
    """A tag column as texts, '' where a run lacks the tag (or no run has it)."""
    import pandas as pd

    return runs[column].map(_seed_text) if column in runs else pd.Series("", index=runs.index)


def selected_runs(runs):
    """The newest evaluation run per scene, method, seed (tag lcp.seed) and variant (the
    severity of a sweep point; '' for the scene's test set), AP values in percent.

    Runs without the tag (logged before seeds were tagged) count as one run of an unknown
    seed, and only where the scene and method have no tagged run. A seed tag that is no
    number is said on stderr and its run left out.
    """
    import pandas as pd

    columns = ["scene", "method", "seed", "variant", *(name for name, _ in METRICS), "run name", "run id", "finished"]
    needed = [f"tags.{settings.TAG_SCENE}", f"tags.{settings.TAG_METHOD}"]
    if runs.empty or any(column not in runs for column in needed):
        return pd.DataFrame(columns=columns)
    runs = runs.dropna(subset=needed)
    runs = runs.assign(_ap=[_percent(run, *METRICS[0]) for _, run in runs.iterrows()])
    runs = runs[runs["_ap"].notna()].sort_values("start_time", ascending=False)
    seed_column, variant_column = f"tags.{settings.TAG_SEED}", f"tags.{settings.TAG_VARIANT}"
    runs = runs.assign(_seed=_texts(runs, seed_column), _variant=_texts(runs, variant_column))
    for _, run in runs[(runs["_seed"] != "") & ~runs["_seed"].str.isdigit()].iterrows():
        print(f"warning: run {run['run_id']}: tag {settings.TAG_SEED} = {run['_seed']!r} is not a seed number; "
              "left out", file=sys.stderr)
    runs = runs[(runs["_seed"] == "") | runs["_seed"].str.isdigit()]
    tagged = set(map(tuple, runs.loc[runs["_seed"] != "", needed].itertuples(index=False)))
    untagged_kept = [tuple(key) not in tagged for key in runs[needed].itertuples(index=False)]
    runs = runs[(runs["_seed"] != "") | pd.Series(untagged_kept, index=runs.index)]
    newest = runs.drop_duplicates(subset=[*needed, "_seed", "_variant"], keep="first")
    rows = [{"scene": run[needed[0]], "method": run[needed[1]], "seed": run["_seed"], "variant": run["_variant"],
             **{name: _percent(run, name, key) for name, key in METRICS},
             "run name": run.get("tags.mlflow.runName"), "run id": run["run_id"],
             "finished": str(run["end_time"]) if "end_time" in run else None}
            for _, run in newest.iterrows()]
    table = pd.DataFrame(rows, columns=columns)
    order = table["seed"].map(lambda seed: int(seed) if seed else -1)
    return table.assign(_order=order).sort_values(["scene", "method", "_order", "variant"]) \
        .drop(columns="_order").reset_index(drop=True)


def _evaluation_name(run) -> str:
    """The run's name in lcp.report.metrics: METHOD, METHOD/seedN, each with @SEVERITY for a sweep point."""
    name = f"{run['method']}/seed{run['seed']}" if run["seed"] else run["method"]
    return f"{name}@{run['variant']}" if run["variant"] else name


def scene_evaluations(selected) -> dict[str, tuple[dict, dict]]:
    """scene -> (test-set evaluations, sweep evaluations), as lcp.report.metrics names and
    reads them (`lcp test --eval-out` keys). Variants that are no PARAMETER_VALUE severity
    (e.g. a hand-made `--variant`) are no sweep point and left out."""
    from lcp.report.metrics import parse_sweep_name

    scenes: dict[str, tuple[dict, dict]] = {}
    for _, run in selected.iterrows():
        test, sweep = scenes.setdefault(run["scene"], ({}, {}))
        evaluation = {**{key: run[name] / 100 for name, key in METRICS}, "classwise": {}}
        name = _evaluation_name(run)
        if not run["variant"]:
            test[name] = evaluation
            continue
        try:
            parse_sweep_name(name)
        except LCPError:
            continue
        sweep[name] = evaluation
    return scenes


def seed_rows(selected):
    """The test-set evaluations, one row per scene, method and seed: AP in percent and, for
    LCP, its difference to the baseline of the same seed."""
    import pandas as pd

    from lcp.report.metrics import group_by_method, paired_differences

    rows = []
    for scene, (test, _) in scene_evaluations(selected).items():
        paired = paired_differences(group_by_method(test))
        gains = {} if paired is None else dict(paired["AP"].items())
        runs = selected[(selected["scene"] == scene) & (selected["variant"] == "")]
        for _, run in runs.iterrows():
            seed = int(run["seed"]) if run["seed"] else None
            rows.append({"scene": scene, "method": run["method"], "seed": run["seed"],
                         **{name: run[name] for name, _ in METRICS},
                         "AP vs baseline": gains.get(seed, math.nan) if run["method"] == "lcp" else math.nan,
                         "run name": run["run name"], "run id": run["run id"], "finished": run["finished"]})
    columns = ["scene", "method", "seed", *(name for name, _ in METRICS), "AP vs baseline", "run name", "run id",
               "finished"]
    return pd.DataFrame(rows, columns=columns)


def comparison_table(selected):
    """scene x method rows: ours (percent; mean and standard deviation over seeds), the paper's
    LCP numbers, the differences ours - paper, and LCP's gain over the baseline: the mean and
    standard deviation of the per-seed differences to the baseline trained with the same seed
    (lcp.report.metrics' statistics, as the per-scene report shows them)."""
    import pandas as pd

    from lcp.report.metrics import group_by_method, method_statistics, paired_differences

    rows = []
    for scene, (test, _) in sorted(scene_evaluations(selected).items()):
        if not test:
            continue
        grouped = group_by_method(test)
        mean, std = method_statistics(test)
        paired = paired_differences(grouped)
        for method in sorted(grouped):
            runs = selected[(selected["scene"] == scene) & (selected["method"] == method) & (selected["variant"] == "")]
            newest = runs.sort_values("finished", ascending=False, na_position="last").iloc[0]
            paper = PUBLISHED_LCP.get(scene) if method == "lcp" else None
            paper = list(paper) if paper else [math.nan] * 3
            ours = [mean.loc[method, name] for name, _ in METRICS]
            gains = paired["AP"] if paired is not None and method == "lcp" else pd.Series(dtype=float)
            rows.append({"scene": scene, "method": method, "seeds": ", ".join(seed for seed in runs["seed"] if seed),
                         **dict(zip((name for name, _ in METRICS), ours)),
                         **{f"{name} std": std.loc[method, name] for name, _ in METRICS},
                         **{f"paper {name}": value for (name, _), value in zip(METRICS, paper)},
                         **{f"d{name}": o - p for (name, _), o, p in zip(METRICS, ours, paper)},
                         "AP vs baseline": gains.mean() if len(gains) else math.nan,
                         "AP vs baseline std": gains.std() if len(gains) > 1 else math.nan,
                         "paired seeds": len(gains) if method != "baseline" else math.nan,
                         "run name": newest["run name"], "run id": " ".join(runs["run id"]),
                         "finished": newest["finished"]})
    return pd.DataFrame(rows, columns=COLUMNS)


def robustness_tables(selected) -> tuple[dict, dict]:
    """scene -> its sweep's per-seed table and per-method summary (lcp.tracking.robustness),
    for the scenes with sweep evaluations."""
    from lcp.tracking.robustness import method_summary, seed_summary

    seeds, summaries = {}, {}
    for scene, (test, sweep) in sorted(scene_evaluations(selected).items()):
        if sweep:
            seeds[scene] = seed_summary(test, sweep, where=f"{scene}: ")
            summaries[scene] = method_summary(seeds[scene])
    return seeds, summaries


def _number(value: float, signed: bool = False) -> str:
    if isinstance(value, float) and math.isnan(value):
        return ""
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _with_spread(value: float, spread: float, signed: bool = False) -> str:
    text = _number(value, signed)
    return f"{text} ± {spread:.1f}" if text and not math.isnan(spread) else text


def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(columns) -> list[str]:
    return [_row(columns), "|" + "|".join("---" for _ in columns) + "|"]


def to_markdown(table, seeds) -> str:
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
    lines = _header(shown) + [_row(cell(row, c) for c in shown) for _, row in table.iterrows()]
    lines.append("")
    several = seeds.groupby(["scene", "method"]).size().gt(1).any()
    spread = (" With several seeds: mean ± standard deviation over seeds; AP vs baseline is the mean ± "
              "standard deviation of the per-seed differences to the baseline trained with the same seed "
              "from the same pretrained detector." if several else "")
    lines.append("AP in percent (COCO bbox AP@[.5:.95], AP50, AP75 on the test set). paper: Fu et al., "
                 f"LCP, IEEE TCSVT 2024 (LCP-50); dX = ours - paper.{spread}")
    if several:
        per_seed = ["scene", "method", "seed", "AP", "AP50", "AP75", "AP vs baseline", "run id"]
        lines += ["", "Per seed:", "", *_header(per_seed)]
        for _, row in seeds.iterrows():
            cells = [str(row[c]) for c in ("scene", "method", "seed")]
            cells += [_number(row[c]) for c in ("AP", "AP50", "AP75")]
            cells += [_number(row["AP vs baseline"], signed=True), str(row["run id"])]
            lines.append(_row(cells))
    return "\n".join(lines) + "\n"


ROBUSTNESS_NOTE = (
    "mmdetection's robustness summary (tools/analysis_tools/robustness_eval.py): mPC is the mean AP over the "
    "sweep's severities, rPC = mPC / P in percent. mmdetection's P is the AP on undegraded images; no undegraded "
    "test set is evaluated here, so P is the AP on the scene's own (low-quality) test set, of the same method and "
    "seed, and an rPC above 100 means the sweep is milder on average. mPC vs baseline: LCP's mPC minus the "
    "baseline's, paired by seed.")


def robustness_markdown(seeds: dict, summaries: dict) -> str:
    """One table per scene with a sweep: AP at each severity, P, mPC and rPC (mean ± std over seeds)."""
    from lcp.tracking.robustness import P, severities

    lines = []
    for scene, summary in summaries.items():
        swept = severities(seeds[scene])
        shown = ["method", "seeds", *swept, "P (test set)", "mPC", "rPC (%)", "mPC vs baseline"]
        lines += ["", f"Robustness sweep of {scene} (AP in percent at each severity):", "", *_header(shown)]
        for method, row in summary.iterrows():
            cells = [str(method), row["seeds"]]
            cells += [_with_spread(row[c], row[f"{c} std"]) for c in [*swept, P, "mPC", "rPC"]]
            cells.append(_with_spread(row["mPC vs baseline"], row["mPC vs baseline std"], signed=True))
            lines.append(_row(cells))
    if not lines:
        return ""
    lines += ["", ROBUSTNESS_NOTE]
    return "\n".join(lines) + "\n"


def robustness_csv(summaries: dict, seeds: dict) -> tuple[str, str]:
    """The per-method summaries and the per-seed tables of every scene as csv (a scene column first)."""
    import pandas as pd

    summary = pd.concat(summaries, names=["scene"]).reset_index()
    per_seed = pd.concat(seeds, names=["scene"]).reset_index()
    return summary.to_csv(index=False, float_format="%.2f"), per_seed.to_csv(index=False, float_format="%.2f")


def ap_figure(table):
    """Bars of our AP per scene and method (± std over seeds) and, beside them, the paper's
    where it reports the scene: no paper bar, and no legend entry for one, without a number."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [f"{row.scene}\n{row.method}" for row in table.itertuples()]
    positions = np.arange(len(labels))
    published = table["paper AP"].notna().to_numpy()
    width = 0.4 if published.any() else 0.6
    figure, axis = plt.subplots(figsize=(max(4.0, 1.4 * len(labels)), 3.8))
    axis.bar(positions - (width / 2) * published, table["AP"], width, yerr=table["AP std"].fillna(0.0), capsize=3,
             label="ours (AP, ± std over seeds)")
    if published.any():
        axis.bar(positions[published] + width / 2, table["paper AP"][published], width, label="paper LCP-50 (AP)",
                 hatch="//", alpha=0.7)
    axis.set_xticks(positions, labels, fontsize=8)
    axis.set_ylabel("AP (%)")
    axis.legend(fontsize=8)
    axis.set_title("COCO bbox AP per scene and method")
    figure.tight_layout()
    return figure


def plot(table, path: Path) -> None:
    from lcp.io import atomic_path

    figure = ap_figure(table)
    import matplotlib.pyplot as plt  # after ap_figure chose the Agg backend

    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)


def store_folder(uri: str) -> Path | None:
    """The folder of a local sqlite store (its database, and artifacts beside it): no output may touch it."""
    database = settings.sqlite_database(uri)
    return database.parent if database else None


def main(args: argparse.Namespace) -> int:
    from lcp.io import atomic_folder, check_folder_output, write_text

    out_dir = Path(args.out_dir)
    uri = settings.check_target(settings.resolve_target(args.tracking_uri)).uri
    settings.check_store_exists(uri)
    warn_if_moved(uri)
    sources = [store_folder(uri)]
    check_folder_output(out_dir, overwrite=True, sources=sources)
    settings.apply_network_defaults()
    tags, since_ms = parse_tags(args.tag), since_millis(args.since, args.days)
    try:
        runs = search_evaluations(uri, args.experiment, tags, since_ms)
    except LCPError:
        raise
    except Exception as exc:  # noqa: BLE001  unreachable server, bad filter: one clear line
        raise LCPError(f"{uri}: could not search runs ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    selected = selected_runs(runs)
    table = comparison_table(selected)
    if table.empty:
        raise LCPError(f"{uri}: no evaluation runs match (tag lcp.step=evaluate with the metric test/AP)")
    seeds = seed_rows(selected)
    sweep_seeds, sweep_summaries = robustness_tables(selected)
    markdown = to_markdown(table, seeds) + robustness_markdown(sweep_seeds, sweep_summaries)
    print(markdown, end="")
    with atomic_folder(out_dir, overwrite=True, sources=sources) as tmp:
        write_text(tmp / "compare.csv", table.to_csv(index=False, float_format="%.2f"))
        write_text(tmp / "compare_seeds.csv", seeds.to_csv(index=False, float_format="%.2f"))
        write_text(tmp / "compare.md", markdown)
        plot(table, tmp / "compare.png")
        if sweep_summaries:
            summary_csv, seeds_csv = robustness_csv(sweep_summaries, sweep_seeds)
            write_text(tmp / "compare_robustness.csv", summary_csv)
            write_text(tmp / "compare_robustness_seeds.csv", seeds_csv)
        written = sorted(path.name for path in tmp.iterdir() if not path.name.startswith("."))
    print(f"written to {out_dir}: {', '.join(written)}")
    return 0
