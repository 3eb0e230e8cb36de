"""Tables of `lcp test --eval-out` results: one scene's methods side by side, severity sweeps,
and the crux learner's health.

An evaluation is named METHOD (the method trained once) or METHOD/seedN (one of several
trainings of the method, with seed N). With one evaluation per method the tables have one
row per method; with several seeds they hold every seed, the mean and the standard deviation
over seeds (the sample one, n - 1), and the per-seed difference LCP - baseline: both
methods of a seed start from the same pretrained detector, so that difference is paired and
measures the fine-tuning alone.

Values are COCO AP in percent (the eval files hold [0, 1]); None (nothing to measure,
e.g. no small objects) stays empty. The crux learner's mask statistics (`crux_health`,
written by `lcp test` for LCP models) stay in [0, 1].
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lcp.errors import LCPError
from lcp.io import read_json

# eval-file key -> column name
SUMMARY_COLUMNS = {
    "bbox_mAP": "AP",
    "bbox_mAP_50": "AP50",
    "bbox_mAP_75": "AP75",
    "bbox_mAP_s": "APs",
    "bbox_mAP_m": "APm",
    "bbox_mAP_l": "APl",
}
REQUIRED_KEYS = ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "classwise")
# crux_health key -> column name (table), and its heading in the summary page
CRUX_KEY = "crux_health"
CRUX_STATISTICS = {
    "mask_mean": ("crux_mask_mean", "mask mean"),
    "mask_std": ("crux_mask_std", "mask std"),
    "mask_frac_above_half": ("crux_mask_frac_above_half", "mask > 0.5"),
    "mask_spatial_std": ("crux_mask_spatial_std", "spatial std"),
}
CRUX_COLLAPSED = "crux_collapsed"  # 1 collapsed, 0 not; the mean over seeds is the collapsed fraction
PAIRED = "LCP - baseline"
SEED_NAME = re.compile(r"seed(\d+)")


def load_evaluation(path: str | os.PathLike) -> dict[str, Any]:
    """An eval json, checked for the keys the tables need."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise LCPError(f"{path}: not an evaluation file (expected a json object from `lcp test --eval-out`)")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise LCPError(f"{path}: not an evaluation file of `lcp test --eval-out` (missing {', '.join(missing)})")
    if not isinstance(data["classwise"], dict):
        raise LCPError(f"{path}: 'classwise' must map class names to AP")
    for key, value in [*((k, data.get(k)) for k in SUMMARY_COLUMNS), *data["classwise"].items()]:
        if value is not None and not _is_fraction(value):
            raise LCPError(f"{path}: {key} = {value!r} is not an AP in [0, 1] or null")
    count = data.get("num_images")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise LCPError(f"{path}: num_images = {count!r} is not a count of images or null")
    _check_crux_health(path, data.get(CRUX_KEY))
    return data


def _check_crux_health(path, health: Any) -> None:
    if health is None:
        return
    if not isinstance(health, dict):
        raise LCPError(f"{path}: {CRUX_KEY} must be a json object of mask statistics")
    for key in CRUX_STATISTICS:
        value = health.get(key)
        # NaN is what `lcp test` records for a diverged crux learner's mask (its verdict says so)
        if value is not None and not _is_fraction(value) and not (isinstance(value, float) and math.isnan(value)):
            raise LCPError(f"{path}: {CRUX_KEY}.{key} = {value!r} is not a number in [0, 1] or null")
    if not isinstance(health.get("collapsed", False), bool):
        raise LCPError(f"{path}: {CRUX_KEY}.collapsed = {health['collapsed']!r} is not true or false")
    if not isinstance(health.get("verdict") or "", str):
        raise LCPError(f"{path}: {CRUX_KEY}.verdict = {health['verdict']!r} is not a text or null")


def _is_fraction(value: Any) -> bool:
    """A number in [0, 1] (NaN fails the comparison; true and false are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def one_decimal(value: float, signed: bool = False) -> str:
    """`value` to one decimal, with no "-0.0" for a small negative number (it reads as a loss).
    Rounded as Python rounds a float, as `lcp test` prints: round() of a numpy float64 (a pandas
    cell) goes by way of value x 10 and made 19.05 (a little above as a double) 19.0, not 19.1."""
    rounded = round(float(value), 1) + 0.0  # -0.0 + 0.0 is 0.0
    return f"{rounded:+.1f}" if signed and rounded else f"{rounded:.1f}"


def percent(value: float | None) -> float:
    """A fraction as percent, unrounded: tables round once, when they print."""
    return math.nan if value is None else 100 * float(value)


# ---- methods and seeds ------------------------------------------------------------------


def parse_run_name(name: str) -> tuple[str, int | None]:
    """'lcp' -> ('lcp', None); 'lcp/seed1' -> ('lcp', 1)."""
    method, slash, seed = name.partition("/")
    match = SEED_NAME.fullmatch(seed)
    if not method or (slash and not match):
        raise LCPError(f"{name}: expected METHOD or METHOD/seedN, e.g. lcp/seed1")
    return method, int(match.group(1)) if match else None


def group_by_method(evaluations: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[int | None, Mapping[str, Any]]]:
    """METHOD[/seedN] names -> {method: {seed: evaluation}} (seed None for a plain METHOD), seeds in order."""
    grouped: dict[str, dict[int | None, Mapping[str, Any]]] = {}
    for name, evaluation in evaluations.items():
        method, seed = parse_run_name(name)
        runs = grouped.setdefault(method, {})
        if seed in runs:
            raise LCPError(f"{name}: seed {seed} of {method} is given twice")
        if runs and (seed is None or None in runs):
            raise LCPError(f"{name}: {method} is given both with and without a seed")
        runs[seed] = evaluation
    return {method: dict(sorted(runs.items(), key=lambda item: item[0] or 0)) for method, runs in grouped.items()}


def check_seed_names(grouped: Mapping[str, Mapping[int | None, Any]]) -> None:
    """One page names every method's evaluations alike: METHOD/seedN throughout, or METHOD."""
    plain = [method for method, runs in grouped.items() if None in runs]
    seeded = [method for method, runs in grouped.items() if None not in runs]
    if plain and seeded:
        raise LCPError(
            f"{plain[0]}: given without a seed beside {seeded[0]}/seed{next(iter(grouped[seeded[0]]))}; "
            "name every evaluation METHOD/seedN, or none"
        )


def check_one_test_set(evaluations: Mapping[str, Mapping[str, Any]]) -> None:
    """One page compares evaluations of one test set: the same classes and, where the files
    say it, the same number of images (LCP - baseline over two test sets is no gain)."""
    first_name, first = next(iter(evaluations.items()))
    for name, evaluation in evaluations.items():
        for what, value, expected in (
            ("classes", list(evaluation["classwise"]), list(first["classwise"])),
            ("images", evaluation.get("num_images"), first.get("num_images")),
        ):
            if value is not None and expected is not None and value != expected:
                raise LCPError(
                    f"{name}: evaluated on {what} {value}, but {first_name} on {expected}; a report compares "
                    "evaluations of one test set"
                )


def several_seeds(grouped: Mapping[str, Mapping]) -> bool:
    return any(len(runs) > 1 for runs in grouped.values())


def _class_names(evaluations) -> list[str]:
    names: list[str] = []
    for evaluation in evaluations:
        names += [name for name in evaluation["classwise"] if name not in names]
    return names


def _columns(evaluations) -> list[str]:
    """Summary AP, the crux statistics (when an evaluation has them), class-wise AP, image count."""
    columns = list(SUMMARY_COLUMNS.values())
    if any(evaluation.get(CRUX_KEY) for evaluation in evaluations):
        columns += [column for column, _ in CRUX_STATISTICS.values()] + [CRUX_COLLAPSED]
    return columns + [f"AP[{name}]" for name in _class_names(evaluations)] + ["images"]


def evaluation_row(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {column: percent(evaluation.get(key)) for key, column in SUMMARY_COLUMNS.items()}
    row.update({f"AP[{name}]": percent(value) for name, value in evaluation["classwise"].items()})
    row["images"] = evaluation.get("num_images")
    health = evaluation.get(CRUX_KEY)
    if health:
        for key, (column, _) in CRUX_STATISTICS.items():
            row[column] = math.nan if health.get(key) is None else float(health[key])
        row[CRUX_COLLAPSED] = float(bool(health.get("collapsed")))
    return row


def seed_table(runs: Mapping[int | None, Mapping[str, Any]], columns: list[str]) -> pd.DataFrame:
    """One method's evaluations, one row per seed."""
    table = pd.DataFrame(
        [evaluation_row(evaluation) for evaluation in runs.values()], index=list(runs), columns=columns
    )
    table.index.name = "seed"
    return table.astype(float)


def paired_differences(grouped: Mapping[str, Mapping[int | None, Mapping[str, Any]]]) -> pd.DataFrame | None:
    """LCP - baseline per seed both were trained with (summary AP columns), or None without both methods."""
    if not {"baseline", "lcp"} <= set(grouped):
        return None
    seeds = [seed for seed in grouped["lcp"] if seed in grouped["baseline"]]
    if not seeds:
        return None
    summary = list(SUMMARY_COLUMNS.values())
    lcp = seed_table({seed: grouped["lcp"][seed] for seed in seeds}, summary)
    baseline = seed_table({seed: grouped["baseline"][seed] for seed in seeds}, summary)
    return lcp - baseline


def _over_seeds(table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Mean and standard deviation of each column over all the seeds (rows): a column that
    some seed lacks gets none, rather than a mean over other seeds than the table names."""
    return table.mean(skipna=False), table.std(skipna=False)


def _with_statistics(table: pd.DataFrame) -> pd.DataFrame:
    """The per-seed rows, then the mean and the standard deviation over seeds (none for
    the image count and the collapse flag, whose mean is the collapsed fraction)."""
    statistics = pd.DataFrame([*_over_seeds(table)], index=["mean", "std"])
    statistics.loc["std", [column for column in ("images", CRUX_COLLAPSED) if column in table]] = math.nan
    return pd.concat([table.set_axis(list(table.index), axis=0), statistics])


def metrics_table(evaluations: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per method (AP, AP50, AP75, APs, APm, APl, crux statistics, AP per class,
    images); with several seeds, rows per (method, seed): every seed, then `mean` and `std`,
    for each method and for the paired difference LCP - baseline."""
    grouped = group_by_method(evaluations)
    columns = _columns(evaluations.values())
    if not several_seeds(grouped):
        rows = {method: evaluation_row(next(iter(runs.values()))) for method, runs in grouped.items()}
        table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=columns)
        table.index.name = "method"
        return table
    parts = {method: _with_statistics(seed_table(runs, columns)) for method, runs in grouped.items()}
    paired = paired_differences(grouped)
    if paired is not None:
        parts[PAIRED] = _with_statistics(paired).reindex(columns=columns)
    table = pd.concat(parts, names=["method", "seed"])
    return table


def method_statistics(evaluations: Mapping[str, Mapping[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and standard deviation over seeds, one row per method (std NaN for one seed)."""
    grouped = group_by_method(evaluations)
    columns = _columns(evaluations.values())
    tables = {method: _over_seeds(seed_table(runs, columns)) for method, runs in grouped.items()}
    mean = pd.DataFrame({method: statistics[0] for method, statistics in tables.items()}).T.reindex(columns=columns)
    std = pd.DataFrame({method: statistics[1] for method, statistics in tables.items()}).T.reindex(columns=columns)
    mean.index.name = std.index.name = "method"
    return mean, std


def classwise_table(table: pd.DataFrame) -> pd.DataFrame:
    """Class-wise AP with one row per class and one column per method (`table`: one row per method)."""
    columns = [column for column in table.columns if column.startswith("AP[")]
    classwise = table[columns].T
    classwise.index = [column[3:-1] for column in columns]
    classwise.index.name = "class"
    return classwise


def table_csv(table: pd.DataFrame) -> str:
    """The table as csv: AP with two decimals, crux statistics with four significant digits
    (a collapsed mask's are tiny), missing values empty."""

    def formatted(column: str, values: pd.Series) -> pd.Series:
        spec = ".4g" if column.startswith("crux_") else "g" if column == "images" else ".2f"
        return values.map(lambda v: "" if v is None or pd.isna(v) else f"{float(v):{spec}}")

    return pd.DataFrame(
        {column: formatted(column, table[column]) for column in table.columns}, index=table.index
    ).to_csv()


# ---- severity sweeps -------------------------------------------------------------------


def parse_sweep_name(name: str) -> tuple[str, str, float]:
    """'lcp@beta_0.02' -> ('lcp', 'beta', 0.02); the method part may be METHOD/seedN."""
    method, at, severity = name.partition("@")
    parameter, _, value = severity.rpartition("_")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not at or not method or not parameter or not math.isfinite(number):
        raise LCPError(f"{name}: expected METHOD@PARAMETER_VALUE, e.g. lcp@beta_0.02 (or lcp/seed1@beta_0.02)")
    return method, parameter, number


def robustness_table(evaluations: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Long table (method, parameter, value, AP, AP50, AP75) from METHOD[/seedN]@PARAMETER_VALUE
    names; with several seeds a `seed` column after the method: each seed, then mean and std."""
    metrics = list(SUMMARY_COLUMNS.values())[:3]
    points: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for name, evaluation in evaluations.items():
        run, parameter, value = parse_sweep_name(name)
        method, seed = parse_run_name(run)
        points.setdefault((method, value), []).append(
            {
                "method": method,
                "seed": seed,
                "parameter": parameter,
                "value": value,
                **{SUMMARY_COLUMNS[key]: percent(evaluation.get(key)) for key in list(SUMMARY_COLUMNS)[:3]},
            }
        )
    parameters = {row["parameter"] for rows in points.values() for row in rows}
    if len(parameters) > 1:
        raise LCPError(f"a sweep varies one parameter, got {', '.join(sorted(parameters))}")
    for (method, value), rows in points.items():
        seeds = [row["seed"] for row in rows]
        if len(set(seeds)) < len(seeds) or (len(seeds) > 1 and None in seeds):
            raise LCPError(
                f"{method}@{rows[0]['parameter']}_{value:g}: give each seed once "
                "(METHOD@... for one training, METHOD/seedN@... for several)"
            )
    first_point: dict[str, tuple[float, list]] = {}
    for (method, value), rows in sorted(points.items()):
        seeds = sorted(row["seed"] for row in rows if row["seed"] is not None)
        first_value, first_seeds = first_point.setdefault(method, (value, seeds))
        if seeds != first_seeds:  # the mean curve would compare different trainings point to point
            parameter = rows[0]["parameter"]
            raise LCPError(
                f"{method}: seeds {_listed(first_seeds) or 'none'} at {parameter}_{first_value:g} but "
                f"{_listed(seeds) or 'none'} at {parameter}_{value:g}; give every point of the sweep the same seeds"
            )
    ordered = sorted(points.items(), key=lambda item: item[0])
    if all(len(rows) == 1 for _, rows in ordered):
        return pd.DataFrame(
            [{k: v for k, v in rows[0].items() if k != "seed"} for _, rows in ordered],
            columns=["method", "parameter", "value", *metrics],
        )
    table = []
    for _, rows in ordered:
        rows = sorted(rows, key=lambda row: row["seed"] if row["seed"] is not None else -1)
        values = pd.DataFrame(rows)[metrics].astype(float)
        table += rows + [{**rows[0], "seed": label, **getattr(values, label)().to_dict()} for label in ("mean", "std")]
    return pd.DataFrame(table, columns=["method", "seed", "parameter", "value", *metrics])


def robustness_means(table: pd.DataFrame) -> pd.DataFrame:
    """AP mean ± std over seeds of a robustness_table with seeds: one row per value of the
    parameter, one column per method (as text, like the summary page's)."""
    statistics = table[table["seed"].isin(["mean", "std"])]
    cells: dict[str, dict[Any, str]] = {}
    for (method, value), rows in statistics.groupby(["method", "value"], sort=False):
        ap = rows.set_index("seed")["AP"]
        cells.setdefault(method, {})[value] = _mean_and_std(ap["mean"], ap["std"])
    return pd.DataFrame(cells).rename_axis(table["parameter"].iloc[0])


# ---- the summary page --------------------------------------------------------------------


def markdown_text(value: Any) -> str:
    """`value` as literal markdown text in a table cell: a class named `car|van` stays one cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


def markdown_table(frame: pd.DataFrame, index_name: str | None = None) -> str:
    """A GitHub markdown table; numbers with one decimal, missing values as '-'."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else one_decimal(value)
        return "-" if value is None else markdown_text(value)

    header = [markdown_text(index_name if index_name is not None else frame.index.name or "")]
    header += [markdown_text(column) for column in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(frame.columns)) + "|"]
    for index, row in frame.iterrows():
        lines.append("| " + " | ".join([markdown_text(index)] + [cell(value) for value in row]) + " |")
    return "\n".join(lines) + "\n"


def _mean_and_std(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "-"
    return one_decimal(mean) if math.isnan(std) else f"{one_decimal(mean)} ± {one_decimal(std)}"


def _label(method: str) -> str:
    return "LCP" if method == "lcp" else method


COLLAPSE_NEXT_STEPS = (
    "A collapsed crux learner marks no regions: its branch sees the whole image scaled alike, or "
    "nothing when the mask is near 0. Whether any catch-up learner could help this detector: "
    "`bench/injection_oracle.py`; whether the crux learner opens for clean content: "
    "`bench/crux_clean_content.py`; where the detection loss wants the mask: "
    "`bench/crux_gradient.py` (bench/README.md, \"The crux-learner study\").\n"
)


def collapse_sentences(grouped: Mapping[str, Mapping[int | None, Mapping[str, Any]]]) -> list[str]:
    """One plain sentence per collapsed crux learner: the method, the seed and `lcp test`'s
    verdict, e.g. "LCP (seed 1): crux learner collapsed: the mask is flat, ...", then where to
    look next (COLLAPSE_NEXT_STEPS)."""
    sentences = []
    for method, runs in grouped.items():
        for seed, evaluation in runs.items():
            health = evaluation.get(CRUX_KEY) or {}
            if not health.get("collapsed"):
                continue
            where = f" (seed {seed})" if seed is not None else ""
            verdict = (health.get("verdict") or "crux learner collapsed").strip().rstrip(".")
            sentences.append(f"{_label(method)}{where}: {verdict}.\n")
    if sentences:
        sentences.append(COLLAPSE_NEXT_STEPS)
    return sentences


def collapse_counts(grouped: Mapping[str, Mapping[int | None, Mapping[str, Any]]]) -> list[str]:
    """Over several seeds, one sentence per method whose crux learner collapsed, e.g. "LCP: crux
    learner collapsed in 5 of 5 seeds (0, 1, 2, 5, 10) ...": each seed's verdict (collapse_sentences)
    stands under the crux learner's table, not between the title and the AP table."""
    sentences = []
    for method, runs in grouped.items():
        measured = [seed for seed, evaluation in runs.items() if evaluation.get(CRUX_KEY)]
        collapsed = [seed for seed in measured if runs[seed][CRUX_KEY].get("collapsed")]
        if collapsed:
            sentences.append(
                f"{_label(method)}: crux learner collapsed in {len(collapsed)} of {len(measured)} seeds "
                f"({_listed(collapsed)}); each seed's verdict is under Crux learner below.\n"
            )
    return sentences


def crux_markdown(grouped: Mapping[str, Mapping[int | None, Mapping[str, Any]]]) -> str:
    """The crux learner's mask statistics, per method (and seed, with their mean where several)."""
    several = several_seeds(grouped)
    header = ["method"] + (["seed"] if several else []) + [title for _, title in CRUX_STATISTICS.values()]
    lines = [
        "| " + " | ".join(header + ["collapsed"]) + " |",
        "|" + "|".join(["---"] * (2 if several else 1) + ["---:"] * (len(CRUX_STATISTICS) + 1)) + "|",
    ]

    def number(value: Any) -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{float(value):.3g}"

    for method, runs in grouped.items():
        healths = {seed: evaluation.get(CRUX_KEY) for seed, evaluation in runs.items() if evaluation.get(CRUX_KEY)}
        for seed, health in healths.items():
            cells = [method] + ([str(seed)] if several else []) + [number(health.get(key)) for key in CRUX_STATISTICS]
            lines.append("| " + " | ".join(cells + ["yes" if health.get("collapsed") else "no"]) + " |")
        if several and len(healths) > 1:
            means = [
                pd.Series([h.get(key) for h in healths.values()], dtype=float).mean(skipna=False)  # as _over_seeds
                for key in CRUX_STATISTICS
            ]
            collapsed = sum(bool(h.get("collapsed")) for h in healths.values())
            lines.append(
                "| "
                + " | ".join([method, "mean"] + [number(value) for value in means] + [f"{collapsed} of {len(healths)}"])
                + " |"
            )
    return "\n".join(lines) + "\n"


def summary_markdown(
    title: str, evaluations: Mapping[str, Mapping[str, Any]], sources: Mapping[str, str | Path]
) -> str:
    """The scene's summary page: overall metrics, LCP's gain, the crux learner's health,
    class-wise AP, and the sources; over seeds where several."""
    grouped = group_by_method(evaluations)
    summary = list(SUMMARY_COLUMNS.values())
    parts = [f"# {title}: detection on the low-quality test set\n\n"]
    if not several_seeds(grouped):
        table = metrics_table(evaluations)
        parts += [
            "COCO box AP in percent.\n\n",
            *_paragraph(collapse_sentences(grouped)),
            markdown_table(table[summary]),
        ]
        if {"baseline", "lcp"} <= set(table.index):
            lcp_seed, baseline_seed = (next(iter(grouped[method])) for method in ("lcp", "baseline"))
            if lcp_seed == baseline_seed:
                gain = (table.loc["lcp", summary] - table.loc["baseline", summary]).to_frame(PAIRED).T
                parts += ["\n", markdown_table(gain, index_name="")]
            else:  # a difference of two seeds' trainings is no gain of the method
                parts += [
                    f"\n{PAIRED} is not shown: LCP was trained with seed {lcp_seed}, the baseline with "
                    f"seed {baseline_seed}.\n"
                ]
        classwise = classwise_table(table)
    else:
        mean, std = method_statistics(evaluations)
        seeds = sorted({seed for runs in grouped.values() for seed in runs})
        parts += [
            (
                f"COCO box AP in percent: mean ± sample standard deviation (n - 1) over seeds {_listed(seeds)}. "
                "Every seed fine-tunes both methods from the same pretrained detector.\n\n"
            ),
            *_paragraph(collapse_counts(grouped)),
        ]
        overall = pd.DataFrame(
            {
                "seeds": {method: _listed(list(runs)) for method, runs in grouped.items()},
                **{
                    column: {
                        method: _mean_and_std(mean.loc[method, column], std.loc[method, column]) for method in grouped
                    }
                    for column in summary
                },
            }
        )
        overall.index.name = "method"
        parts.append(markdown_table(overall))
        paired = paired_differences(grouped)
        if paired is not None:
            parts += [
                f"\n## {PAIRED}, per seed\n\n",
                (
                    "Paired: for each seed both methods start from the same pretrained weights, so the "
                    "spread is that of LCP's gain, not of either method.\n\n"
                ),
                markdown_table(_with_statistics(paired), index_name="seed"),
            ]
        elif {"baseline", "lcp"} <= set(grouped):  # as with one seed each: no seed trained both
            parts.append(
                f"\n{PAIRED} is not shown: LCP was trained with seeds {_listed(list(grouped['lcp']))}, the "
                f"baseline with seeds {_listed(list(grouped['baseline']))}.\n"
            )
        per_seed = pd.concat(
            {method: seed_table(runs, summary) for method, runs in grouped.items()}, names=["method", "seed"]
        ).reset_index(level="seed")
        parts += ["\n## Per seed\n\n", markdown_table(per_seed.astype({"seed": str}))]
        classwise = classwise_table(mean)
    if any(evaluation.get(CRUX_KEY) for evaluation in evaluations.values()):
        parts += [
            "\n## Crux learner\n\n",
            "The crux mask on the test images: its mean, spread, share of pixels above 0.5 and "
            "spatial spread within an image, in [0, 1]"
            + (", per seed and their mean.\n\n" if several_seeds(grouped) else ".\n\n"),
            *(_paragraph(collapse_sentences(grouped)) if several_seeds(grouped) else []),
            crux_markdown(grouped),
        ]
    heading = "Class-wise AP" + (" (mean over seeds)" if several_seeds(grouped) else "")
    parts += [f"\n## {heading}\n\n", markdown_table(classwise)]
    parts += ["\n## Sources\n\n"] + [f"- {name}: `{path}`\n" for name, path in sources.items()]
    return "".join(parts)


def _paragraph(sentences: list[str]) -> list[str]:
    return sentences + ["\n"] if sentences else []


def _listed(seeds: list) -> str:
    return ", ".join(str(seed) for seed in seeds)
