"""`lcp report metrics|robustness`: tables (csv, markdown) and plots (png) from eval files.

    lcp report metrics --eval baseline=results/demo/baseline/eval.json \\
        --eval lcp=results/demo/lcp/eval.json --csv metrics.csv --markdown summary.md --plot classwise_ap.png
    lcp report metrics --eval baseline/seed0=... --eval baseline/seed1=... --eval lcp/seed0=... --eval lcp/seed1=... ...
    lcp report robustness --eval baseline@beta_0.02=... --eval lcp@beta_0.02=... --csv robustness.csv --plot robustness.png
"""

from __future__ import annotations

import argparse

from lcp.errors import LCPError

HELP = "tables and plots of evaluation results (the workflow's per-scene report)"


def _named_path(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=PATH")
    return name, path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    metrics = sub.add_parser("metrics", help="methods side by side on one test set: AP, AP50, AP75, class-wise")
    metrics.add_argument("--eval", dest="evals", type=_named_path, action="append", required=True,
                         metavar="METHOD[/seedN]=EVAL.json",
                         help="an `lcp test --eval-out` file; repeatable. Name each seed's file METHOD/seedN "
                              "for the mean and spread over seeds and the paired LCP - baseline per seed")
    metrics.add_argument("--csv", required=True, help="the table, one row per method")
    metrics.add_argument("--markdown", help="summary page with the tables")
    metrics.add_argument("--plot", help="class-wise AP bar chart (png)")
    metrics.add_argument("--title", default="results", help="title of the page and plot (e.g. the scene)")
    metrics.set_defaults(_main=main_metrics)
    robustness = sub.add_parser("robustness", help="AP of each method against a degradation parameter")
    robustness.add_argument("--eval", dest="evals", type=_named_path, action="append", required=True,
                            metavar="METHOD[/seedN]@PARAMETER_VALUE=EVAL.json",
                            help="an `lcp test --eval-out` file, e.g. lcp@beta_0.02=... or "
                                 "lcp/seed1@beta_0.02=...; repeatable")
    robustness.add_argument("--csv", required=True, help="long table: method, parameter, value, AP, AP50, AP75")
    robustness.add_argument("--plot", help="AP against the parameter (png)")
    robustness.add_argument("--title", default="robustness", help="title of the plot (e.g. the scene)")
    robustness.set_defaults(_main=main_robustness)


def main(args: argparse.Namespace) -> int:  # replaced by the chosen report's main
    raise AssertionError("unreachable: a report is required")


def _load_all(pairs: list[tuple[str, str]]) -> dict:
    from lcp.report.metrics import load_evaluation

    evaluations = {}
    for name, path in pairs:
        if name in evaluations:
            raise LCPError(f"--eval {name}=...: given twice")
        evaluations[name] = load_evaluation(path)
    return evaluations


def main_metrics(args: argparse.Namespace) -> int:
    from lcp.io import write_text
    from lcp.report.metrics import (classwise_table, group_by_method, method_statistics, metrics_table,
                                    several_seeds, summary_markdown, table_csv)
    from lcp.report.plots import plot_classwise

    evaluations = _load_all(args.evals)
    table = metrics_table(evaluations)
    write_text(args.csv, table_csv(table))
    if args.markdown:
        write_text(args.markdown, summary_markdown(args.title, evaluations, dict(args.evals)))
    if args.plot:
        mean, std = method_statistics(evaluations)
        several = several_seeds(group_by_method(evaluations))
        plot_classwise(classwise_table(mean), args.plot,
                       f"{args.title}: class-wise AP" + (" (mean and std over seeds)" if several else ""),
                       errors=classwise_table(std) if several else None)
    print(table[["AP", "AP50", "AP75"]].to_string(float_format=lambda v: f"{v:.1f}"))
    return 0


def main_robustness(args: argparse.Namespace) -> int:
    from lcp.io import write_text
    from lcp.report.metrics import robustness_table
    from lcp.report.plots import plot_robustness

    table = robustness_table(_load_all(args.evals))
    write_text(args.csv, table.to_csv(index=False, float_format="%.4g"))
    if args.plot:
        spread = " (mean and std over seeds)" if "seed" in table else ""
        plot_robustness(table, args.plot, f"{args.title}: AP against {table['parameter'].iloc[0]}{spread}")
    print(table.to_string(index=False))
    return 0
