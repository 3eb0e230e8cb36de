"""Our evaluation runs beside the paper's: the tables `lcp compare` shows (lcp/commands/compare.py).

Reads the evaluation runs (tag lcp.step = evaluate) of the lcp/<scene> experiments through
mlflow.search_runs and keeps the newest run per scene, method, training seed (tag lcp.seed)
and variant (tag lcp.variant: a sweep's severity, e.g. beta_0.02; none for the scene's test
set). From the test-set runs: AP in percent (mean and standard deviation over seeds where
several), the published LCP-50 results (Fu et al., TCSVT 2024) for the scenes the paper
reports, the differences ours - paper, and LCP's gain over the baseline of the same scene,
paired by seed; the statistics are lcp.report.metrics', as in the per-scene report. From the
sweep runs: lcp.tracking.robustness' mPC and rPC. lcp.tracking.comparison_output renders
and writes them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lcp.errors import LCPError
from lcp.tracking import settings
from lcp.tracking.relocate import warn_if_moved

# The authors' table, LCP with ResNet-50: (AP, AP50, AP75) in percent.
PUBLISHED_LCP = {
    "foggy_city": (29.0, 46.6, 30.2),
    "rainy_city": (27.6, 45.9, 27.9),
    "urpc": (47.8, 81.8, 50.3),
}
# Column name (also the logged metric test/<name>, in percent: lcp.tracking.metrics) and the key of
# `lcp test --eval-out` (runs logged before AP was percent hold test/<key> as a fraction).
METRICS = (("AP", "bbox_mAP"), ("AP50", "bbox_mAP_50"), ("AP75", "bbox_mAP_75"))
COLUMNS = [
    "scene",
    "method",
    "seeds",
    "AP",
    "AP50",
    "AP75",
    "AP std",
    "AP50 std",
    "AP75 std",
    "paper AP",
    "paper AP50",
    "paper AP75",
    "dAP",
    "dAP50",
    "dAP75",
    "AP vs baseline",
    "AP vs baseline std",
    "paired seeds",
    "run name",
    "run id",
    "finished",
]


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
    return [
        e.experiment_id for e in client.search_experiments(filter_string=f"name LIKE '{settings.EXPERIMENT_PREFIX}%'")
    ]


def search_evaluations(tracking_uri: str, experiments: list[str], tags: dict[str, str], since_ms: int | None):
    """The evaluation runs as a pandas DataFrame (mlflow.search_runs), newest first."""
    return _search(tracking_uri, experiments, filter_string(tags, since_ms))


def search_trainings(tracking_uri: str, experiments: list[str]):
    """The training runs of the methods (tag lcp.step = train), newest first."""
    return _search(tracking_uri, experiments, f"tags.`{settings.TAG_STEP}` = 'train'")


def _search(tracking_uri: str, experiments: list[str], filter_text: str):
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment_ids = find_experiment_ids(client, experiments)
    if not experiment_ids:
        raise LCPError(f"{tracking_uri}: no lcp/* experiments; log runs first (lcp test --track ...)")
    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.search_runs(
        experiment_ids=experiment_ids,
        filter_string=filter_text,
        order_by=["attributes.start_time DESC"],
        output_format="pandas",
    )


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


def selected_runs(runs, trainings=None):
    """The newest evaluation run per scene, method, seed (tag lcp.seed) and variant (the
    severity of a sweep point; '' for the scene's test set), AP values in percent.

    `trainings` (search_trainings): an evaluation older than the newest training of its model
    (_of_current_models) is of a model trained over since (the training failed, was stopped, or
    is not evaluated yet): said on stderr and left out, not shown as the current result.

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
        print(
            f"warning: run {run['run_id']}: tag {settings.TAG_SEED} = {run['_seed']!r} is not a seed number; left out",
            file=sys.stderr,
        )
    runs = runs[(runs["_seed"] == "") | runs["_seed"].str.isdigit()]
    other_thresholds = _texts(runs, f"tags.{settings.TAG_IOU_THRS}") != ""
    if other_thresholds.any():  # their AP is no AP@[.5:.95]
        print(
            f"warning: {int(other_thresholds.sum())} evaluation runs at other IoU thresholds than COCO's 0.50:0.95 "
            f"(tag {settings.TAG_IOU_THRS}) left out",
            file=sys.stderr,
        )
        runs = runs[~other_thresholds]
    if trainings is not None:
        runs = _of_current_models(runs, trainings, needed)
    tagged = set(map(tuple, runs.loc[runs["_seed"] != "", needed].itertuples(index=False)))
    untagged_kept = [tuple(key) not in tagged for key in runs[needed].itertuples(index=False)]
    runs = runs[(runs["_seed"] != "") | pd.Series(untagged_kept, index=runs.index)]
    newest = _one_test_set(runs.drop_duplicates(subset=[*needed, "_seed", "_variant"], keep="first"), needed[0])
    rows = [
        {
            "scene": run[needed[0]],
            "method": run[needed[1]],
            "seed": run["_seed"],
            "variant": run["_variant"],
            **{name: _percent(run, name, key) for name, key in METRICS},
            "run name": run.get("tags.mlflow.runName"),
            "run id": run["run_id"],
            "finished": str(run["end_time"]) if "end_time" in run else None,
        }
        for _, run in newest.iterrows()
    ]
    table = pd.DataFrame(rows, columns=columns)
    order = table["seed"].map(lambda seed: int(seed) if seed else -1)
    return (
        table.assign(_order=order)
        .sort_values(["scene", "method", "_order", "variant"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


TEST_SET_DIGEST = "params.data.test.ann_sha256"


def _of_current_models(runs, trainings, needed: list[str]):
    """The evaluation runs (with _seed) not older than the newest training of their model: a
    training of the same scene, method and seed whose work dir (tag lcp.work_dir) holds the
    evaluated checkpoint (tag lcp.checkpoint) or is beside it, as the workflow publishes
    <run>/latest.pth from <run>/work/. A training elsewhere (another checkout, a trial in /tmp)
    is another model and leaves the evaluation alone."""
    checkpoint_column, work_dir_column = "tags.lcp.checkpoint", "tags.lcp.work_dir"
    if trainings.empty or checkpoint_column not in runs or work_dir_column not in trainings:
        return runs
    trainings = trainings.dropna(subset=[*needed, work_dir_column])
    trainings = trainings.assign(_seed=_texts(trainings, f"tags.{settings.TAG_SEED}"))
    newest = {}
    for _, training in trainings.iterrows():  # newest first
        work_dir = Path(training[work_dir_column])
        for folder in (work_dir, work_dir.parent):
            newest.setdefault((training[needed[0]], training[needed[1]], training["_seed"], str(folder)), training)
    stale = {}
    for index, run in runs.iterrows():
        if _missing(run[checkpoint_column]):
            continue
        key = (run[needed[0]], run[needed[1]], run["_seed"], str(Path(run[checkpoint_column]).parent))
        training = newest.get(key)
        if training is not None and training["start_time"] > run["start_time"]:
            stale[index] = training
    for index, training in stale.items():
        print(
            f"warning: run {runs.at[index, 'run_id']} ({runs.at[index, 'tags.mlflow.runName']}) evaluated "
            f"{runs.at[index, checkpoint_column]}, trained again since (run {training.get('tags.mlflow.runName')}, "
            f"{training['status']}); left out",
            file=sys.stderr,
        )
    return runs.drop(index=list(stale))


def _one_test_set(runs, scene_column: str):
    """The runs that evaluated the same test annotations as the newest run of their scene and
    variant (param data.test.ann_sha256; runs without it are kept): a baseline evaluated before
    the test set was converted again is no baseline for an LCP evaluated after. The others are
    said on stderr and left out. `runs` newest first."""
    if TEST_SET_DIGEST not in runs:
        return runs
    digests = runs[TEST_SET_DIGEST].fillna("")
    keep = []
    reference: dict[tuple, str] = {}
    for index, run in runs.iterrows():
        digest = digests[index]
        key = (run[scene_column], run["_variant"])
        if digest:
            reference.setdefault(key, digest)
        if digest and digest != reference[key]:
            print(
                f"warning: run {run['run_id']} ({run.get('tags.mlflow.runName')}) evaluated other test annotations "
                f"(sha256 {digest[:12]}) than the newest run of its scene ({reference[key][:12]}); left out",
                file=sys.stderr,
            )
            continue
        keep.append(index)
    return runs.loc[keep]


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
            rows.append(
                {
                    "scene": scene,
                    "method": run["method"],
                    "seed": run["seed"],
                    **{name: run[name] for name, _ in METRICS},
                    "AP vs baseline": gains.get(seed, math.nan) if run["method"] == "lcp" else math.nan,
                    "run name": run["run name"],
                    "run id": run["run id"],
                    "finished": run["finished"],
                }
            )
    columns = [
        "scene",
        "method",
        "seed",
        *(name for name, _ in METRICS),
        "AP vs baseline",
        "run name",
        "run id",
        "finished",
    ]
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
            rows.append(
                {
                    "scene": scene,
                    "method": method,
                    "seeds": ", ".join(seed for seed in runs["seed"] if seed),
                    **dict(zip((name for name, _ in METRICS), ours, strict=True)),
                    **{f"{name} std": std.loc[method, name] for name, _ in METRICS},
                    **{f"paper {name}": value for (name, _), value in zip(METRICS, paper, strict=True)},
                    **{f"d{name}": o - p for (name, _), o, p in zip(METRICS, ours, paper, strict=True)},
                    "AP vs baseline": gains.mean() if len(gains) else math.nan,
                    "AP vs baseline std": gains.std() if len(gains) > 1 else math.nan,
                    "paired seeds": len(gains) if method != "baseline" else math.nan,
                    "run name": _runs_name(runs["run name"]),
                    "run id": " ".join(runs["run id"]),
                    "finished": newest["finished"],
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS).astype({"paired seeds": "Int64"})


def _runs_name(names) -> str:
    """The name of a row's runs: one run's name, or with several seeds `.../seed*` for all of them."""
    names = [name for name in names if isinstance(name, str)]
    if len(names) < 2:
        return names[0] if names else ""
    pattern = {re.sub(r"/seed\d+$", "/seed*", name) for name in names}
    return pattern.pop() if len(pattern) == 1 else ", ".join(names)


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


@dataclass
class Comparison:
    """The tables of one `lcp compare` (pandas DataFrames; the sweep ones keyed by scene)."""

    table: Any  # scene x method: ours, the paper's, the gain over the baseline (COLUMNS)
    seeds: Any  # one row per scene, method and seed
    sweep_seeds: dict  # scene -> its sweep's per-seed table
    sweep_summaries: dict  # scene -> its sweep's per-method summary


def readable_store(tracking_uri: str | None) -> str:
    """The URI of the store to read (MLFLOW_TRACKING_URI, else `tracking_uri`, else the local one);
    LCPError for a store MLflow refuses or a local one not created yet (reading creates nothing);
    a warning when a local store was moved (lcp.tracking.relocate)."""
    uri = settings.check_target(settings.resolve_target(tracking_uri)).uri
    settings.check_store_exists(uri)
    warn_if_moved(uri)
    return uri


def store_folder(uri: str) -> Path | None:
    """The folder of a local sqlite store (its database, and artifacts beside it): no output may touch it."""
    database = settings.sqlite_database(uri)
    return database.parent if database else None


def scene_plans(tracking_uri: str, experiments: list[str]) -> dict[str, tuple[set[str], set[str]]]:
    """Each scene's seeds and severities as the newest workflow run of it had them in its config
    (tags lcp.seeds, lcp.variants of its parent run); scenes no workflow ran are absent."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    parents = client.search_runs(
        find_experiment_ids(client, experiments),
        filter_string=f"tags.`{settings.TAG_ROLE}` = 'invocation'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )
    plans: dict[str, tuple[set[str], set[str]]] = {}
    for run in parents:
        tags = run.data.tags
        scene = tags.get(settings.TAG_SCENE)
        if scene and scene not in plans and settings.TAG_SEEDS in tags:
            split = [
                set(filter(None, tags.get(tag, "").split(","))) for tag in (settings.TAG_SEEDS, settings.TAG_VARIANTS)
            ]
            plans[scene] = (split[0], split[1])
    return plans


def within_plans(selected, plans: Mapping[str, tuple[set[str], set[str]]]):
    """The selected runs without the seeds and severities a scene's newest workflow run no longer
    has (said on stderr): the report of that run leaves them out, so the comparison does too."""
    dropped = [
        index
        for index, row in selected.iterrows()
        if row["scene"] in plans
        and (
            (row["seed"] and row["seed"] not in plans[row["scene"]][0])
            or (row["variant"] and row["variant"] not in plans[row["scene"]][1])
        )
    ]
    for scene in sorted(set(selected.loc[dropped, "scene"])):
        rows = selected.loc[dropped][selected.loc[dropped, "scene"] == scene]
        seeds, variants = plans[scene]
        print(
            f"warning: {scene}: {len(rows)} evaluation runs of seeds or severities its latest workflow run no longer "
            f"has (seeds {', '.join(sorted(seeds, key=int)) or '-'}; severities {', '.join(sorted(variants)) or '-'}) "
            "left out",
            file=sys.stderr,
        )
    return selected.drop(index=dropped).reset_index(drop=True)


def compare(
    uri: str, experiments: Sequence[str] = (), tags: Mapping[str, str] | None = None, since_ms: int | None = None
) -> Comparison:
    """The comparison of the evaluation runs at `uri` in `experiments` (default every lcp/* one) with
    these tag values, started at or after `since_ms` (ms since the epoch); LCPError when none match."""
    settings.apply_network_defaults()
    try:
        runs = search_evaluations(uri, list(experiments), dict(tags or {}), since_ms)
        trainings = search_trainings(uri, list(experiments))
        plans = scene_plans(uri, list(experiments))
    except LCPError:
        raise
    except Exception as exc:  # noqa: BLE001  unreachable server, bad filter: one clear line
        raise LCPError(f"{uri}: could not search runs ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    selected = within_plans(selected_runs(runs, trainings), plans)
    table = comparison_table(selected)
    if table.empty:
        asked = [f"tag {key}={value!r}" for key, value in (tags or {}).items()]
        if since_ms is not None:
            started = dt.datetime.fromtimestamp(since_ms / 1000, dt.UTC)
            asked.append(f"started since {started:%Y-%m-%d %H:%M:%S} UTC")
        raise LCPError(
            f"{uri}: no evaluation runs match (tag lcp.step=evaluate with the metric test/AP"
            + "".join(f", {each}" for each in asked)
            + ")"
        )
    sweep_seeds, sweep_summaries = robustness_tables(selected)
    return Comparison(table, seed_rows(selected), sweep_seeds, sweep_summaries)
