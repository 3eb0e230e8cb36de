"""Tables of `lcp test --eval-out` results: one scene's methods side by side, and severity sweeps.

Values are COCO AP in percent (the eval files hold [0, 1]); None (nothing to measure,
e.g. no small objects) stays empty.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

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
        if value is not None and not (isinstance(value, (int, float)) and 0 <= value <= 1):
            raise LCPError(f"{path}: {key} = {value!r} is not an AP in [0, 1] or null")
    return data


def percent(value: float | None) -> float:
    return math.nan if value is None else round(100 * float(value), 2)


def metrics_table(evaluations: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per method: AP, AP50, AP75, APs, APm, APl, then AP per class."""
    class_names: list[str] = []
    for evaluation in evaluations.values():
        class_names += [name for name in evaluation["classwise"] if name not in class_names]
    rows = []
    for method, evaluation in evaluations.items():
        row: dict[str, Any] = {"method": method}
        row.update({column: percent(evaluation.get(key)) for key, column in SUMMARY_COLUMNS.items()})
        row.update({f"AP[{name}]": percent(evaluation["classwise"].get(name)) for name in class_names})
        row["images"] = evaluation.get("num_images")
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def classwise_table(table: pd.DataFrame) -> pd.DataFrame:
    """Class-wise AP with one row per class and one column per method."""
    columns = [column for column in table.columns if column.startswith("AP[")]
    classwise = table[columns].T
    classwise.index = [column[3:-1] for column in columns]
    classwise.index.name = "class"
    return classwise


def parse_sweep_name(name: str) -> tuple[str, str, float]:
    """'lcp@beta_0.02' -> ('lcp', 'beta', 0.02)."""
    method, at, severity = name.partition("@")
    parameter, _, value = severity.rpartition("_")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not at or not method or not parameter or math.isnan(number):
        raise LCPError(f"{name}: expected METHOD@PARAMETER_VALUE, e.g. lcp@beta_0.02")
    return method, parameter, number


def robustness_table(evaluations: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Long table (method, parameter, value, AP, AP50, AP75) from METHOD@PARAMETER_VALUE names."""
    rows = []
    for name, evaluation in evaluations.items():
        method, parameter, value = parse_sweep_name(name)
        rows.append({"method": method, "parameter": parameter, "value": value,
                     **{SUMMARY_COLUMNS[key]: percent(evaluation.get(key)) for key in list(SUMMARY_COLUMNS)[:3]}})
    parameters = {row["parameter"] for row in rows}
    if len(parameters) > 1:
        raise LCPError(f"a sweep varies one parameter, got {', '.join(sorted(parameters))}")
    return pd.DataFrame(rows).sort_values(["method", "value"], kind="stable").reset_index(drop=True)


def markdown_table(frame: pd.DataFrame, index_name: str | None = None) -> str:
    """A GitHub markdown table; numbers with one decimal, missing values as '-'."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.1f}"
        return "-" if value is None else str(value)

    header = [index_name or frame.index.name or ""] + [str(column) for column in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(frame.columns)) + "|"]
    for index, row in frame.iterrows():
        lines.append("| " + " | ".join([str(index)] + [cell(value) for value in row]) + " |")
    return "\n".join(lines) + "\n"


def summary_markdown(title: str, table: pd.DataFrame, sources: Mapping[str, str | Path]) -> str:
    """The scene's summary page: overall metrics, class-wise AP, LCP's gain, and the sources."""
    overall = table[[column for column in SUMMARY_COLUMNS.values()]]
    parts = [f"# {title}: detection on the low-quality test set\n",
             "COCO box AP in percent.\n\n", markdown_table(overall)]
    if {"baseline", "lcp"} <= set(table.index):
        gain = (overall.loc["lcp"] - overall.loc["baseline"]).to_frame("LCP - baseline").T
        parts += ["\n", markdown_table(gain, index_name="")]
    parts += ["\n## Class-wise AP\n\n", markdown_table(classwise_table(table))]
    parts += ["\n## Sources\n\n"] + [f"- {method}: `{path}`\n" for method, path in sources.items()]
    return "".join(parts)
