"""PNG figures of the report tables (matplotlib, no display needed)."""

from __future__ import annotations

import io

import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    return buffer.getvalue()


def plot_classwise(classwise: pd.DataFrame, title: str, errors: pd.DataFrame | None = None) -> bytes:
    """PNG of grouped bars: AP per class (rows of `classwise`), one bar per method (its columns);
    `errors` (same shape, e.g. the std over seeds) as error bars."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(max(4.0, 1.2 * len(classwise) + 1.5), 3.5))
    yerr = None if errors is None else errors.reindex_like(classwise).fillna(0.0)
    classwise.fillna(0.0).plot.bar(ax=axes, rot=0, width=0.8, yerr=yerr, capsize=3)
    from matplotlib.container import BarContainer

    bar_groups = [container for container in axes.containers if isinstance(container, BarContainer)]
    for bars, method in zip(bar_groups, classwise.columns, strict=True):
        for bar, value in zip(bars, classwise[method], strict=True):
            if pd.isna(value):  # no AP (no ground truth): not a bar of 0
                axes.text(bar.get_x() + bar.get_width() / 2, 0, "n/a", ha="center", va="bottom", fontsize=7)
    axes.set_ylabel("AP (%)")
    axes.set_xlabel("")
    axes.set_title(title)
    axes.legend(title="", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over a bar or error bar
    axes.grid(axis="y", alpha=0.3)
    png = _png(figure)
    plt.close(figure)
    return png


def plot_robustness(table: pd.DataFrame, title: str) -> bytes:
    """PNG of AP against the swept parameter, one line per method (rows of a robustness_table); with
    several seeds, their mean with the standard deviation as error bars."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.0, 3.5))
    seeded = "seed" in table
    means = table[table["seed"] == "mean"] if seeded else table
    methods = means["method"].nunique()
    values = means["value"].astype(float)
    # each method's error bars a little apart, so that one method's bar never hides another's
    step = 0.012 * ((values.max() - values.min()) or abs(values.max()) or 1.0) if len(values) else 0.0
    for index, (method, rows) in enumerate(means.groupby("method", sort=False)):
        if seeded:
            spread = table[(table["method"] == method) & (table["seed"] == "std")].set_index("value")["AP"]
            axes.errorbar(
                rows["value"] + step * (index - (methods - 1) / 2),
                rows["AP"],
                yerr=spread.reindex(rows["value"]).fillna(0.0).to_numpy(),
                marker="o",
                capsize=3,
                label=method,
            )
        else:
            axes.plot(rows["value"], rows["AP"], marker="o", label=method)
    parameter = table["parameter"].iloc[0] if len(table) else ""
    axes.set_xlabel(parameter)
    axes.set_ylabel("AP (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    png = _png(figure)
    plt.close(figure)
    return png
