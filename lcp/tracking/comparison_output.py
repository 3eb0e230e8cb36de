"""`lcp compare`'s output: the comparison (lcp.tracking.comparison) as markdown, csv and a plot, and
the folder that holds them, replaced as a whole on every run: compare.md, compare.csv,
compare_seeds.csv (the run of every seed), compare.png and, with a sweep, compare_robustness.csv
and compare_robustness_seeds.csv."""

from __future__ import annotations

import math
from pathlib import Path

from lcp.report.metrics import one_decimal
from lcp.tracking.comparison import Comparison, store_folder


def _number(value: float, signed: bool = False) -> str:
    if isinstance(value, float) and math.isnan(value):
        return ""
    return one_decimal(value, signed)


def _with_spread(value: float, spread: float, signed: bool = False) -> str:
    text = _number(value, signed)
    return f"{text} ± {one_decimal(spread)}" if text and not math.isnan(spread) else text


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

    shown = [
        "scene",
        "method",
        "seeds",
        "AP",
        "AP50",
        "AP75",
        "paper AP",
        "paper AP50",
        "paper AP75",
        "dAP",
        "dAP50",
        "dAP75",
        "AP vs baseline",
        "run name",
    ]
    lines = _header(shown) + [_row(cell(row, c) for c in shown) for _, row in table.iterrows()]
    lines.append("")
    several = seeds.groupby(["scene", "method"]).size().gt(1).any()
    spread = (
        " With several seeds: mean ± sample standard deviation (n - 1) over seeds; AP vs baseline is the mean ± "
        "sample standard deviation of the per-seed differences to the baseline trained with the same seed "
        "from the same pretrained detector."
        if several
        else ""
    )
    lines.append(
        "AP in percent (COCO bbox AP@[.5:.95], AP50, AP75 on the test set). paper: Fu et al., "
        f"LCP, IEEE TCSVT 2024 (LCP-50); dX = ours - paper.{spread}"
    )
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
    "baseline's, paired by seed."
)


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

    from lcp.tracking.robustness import SEED_COLUMNS, severities

    def leading(frame, columns):
        return frame[columns + [column for column in frame.columns if column not in columns]]

    # every scene's severities before P, mPC and rPC (concat put a second sweep's after the first's statistics)
    values = [*dict.fromkeys(column for table in seeds.values() for column in severities(table)), *SEED_COLUMNS]
    summary = pd.concat(summaries, names=["scene"]).reset_index().astype({"paired seeds": "Int64"})  # a count
    summary = leading(summary, ["scene", "method", "seeds", *values, *(f"{column} std" for column in values)])
    per_seed = leading(pd.concat(seeds, names=["scene"]).reset_index(), ["scene", "method", "seed", *values])
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
    figure, axis = plt.subplots(figsize=(max(4.0, 1.4 * len(labels)) + 2.2, 3.8))
    axis.bar(
        positions - (width / 2) * published,
        table["AP"],
        width,
        yerr=table["AP std"].fillna(0.0),
        capsize=3,
        label="ours (AP, ± sample std over seeds)",
    )
    if published.any():
        axis.bar(
            positions[published] + width / 2,
            table["paper AP"][published],
            width,
            label="paper LCP-50 (AP)",
            hatch="//",
            alpha=0.7,
        )
    axis.set_xticks(positions, labels, fontsize=8)
    axis.set_ylabel("AP (%)")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over a bar
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


def markdown(comparison: Comparison) -> str:
    """What `lcp compare` prints and writes as compare.md."""
    return to_markdown(comparison.table, comparison.seeds) + robustness_markdown(
        comparison.sweep_seeds, comparison.sweep_summaries
    )


def check_out_dir(out_dir: Path, uri: str) -> None:
    """LCPError unless `out_dir` may be replaced: a folder lcp wrote, or none, and not in or around the
    store at `uri`. Checked before the runs are read."""
    from lcp.io import check_folder_output

    check_folder_output(out_dir, overwrite=True, sources=[store_folder(uri)])


def write_comparison(comparison: Comparison, out_dir: Path, uri: str) -> list[str]:
    """Replace `out_dir` with the comparison's files (see the module doc); returns their names."""
    from lcp.io import atomic_folder, write_text

    with atomic_folder(out_dir, overwrite=True, sources=[store_folder(uri)]) as tmp:
        write_text(tmp / "compare.csv", comparison.table.to_csv(index=False, float_format="%.2f"))
        write_text(tmp / "compare_seeds.csv", comparison.seeds.to_csv(index=False, float_format="%.2f"))
        write_text(tmp / "compare.md", markdown(comparison))
        plot(comparison.table, tmp / "compare.png")
        if comparison.sweep_summaries:
            summary_csv, seeds_csv = robustness_csv(comparison.sweep_summaries, comparison.sweep_seeds)
            write_text(tmp / "compare_robustness.csv", summary_csv)
            write_text(tmp / "compare_robustness_seeds.csv", seeds_csv)
        return sorted(path.name for path in tmp.iterdir() if not path.name.startswith("."))
