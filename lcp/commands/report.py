"""`lcp report metrics|robustness|check|detections`: the per-scene report's tables (csv,
markdown, html), plots (png) and sample detection pictures.

    lcp report metrics --eval baseline=results/demo/baseline/eval.json \\
        --eval lcp=results/demo/lcp/eval.json --csv metrics.csv --markdown summary.md --plot classwise_ap.png \\
        --html summary.html --samples baseline=b_0.jpg --samples lcp=l_0.jpg
    lcp report metrics --eval baseline/seed0=... --eval baseline/seed1=... --eval lcp/seed0=... \\
        --eval lcp/seed1=... ...
    lcp report robustness --eval baseline@beta_0.02=... --eval lcp@beta_0.02=... --csv robustness.csv \\
        --plot robustness.png
    lcp report check results/demo/data/check.json --html data_check.html
    lcp report detections CONFIG CHECKPOINT --out detection_0.jpg --out detection_1.jpg [--cfg-options ...]
"""

from __future__ import annotations

import argparse
import html
import math

from lcp.apis.options import add_cfg_options
from lcp.errors import LCPError

HELP = "tables, plots and sample detections of evaluation results (the workflow's per-scene report)"


def _named_path(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=PATH")
    return name, path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    metrics = sub.add_parser("metrics", help="methods side by side on one test set: AP, AP50, AP75, class-wise")
    metrics.add_argument(
        "--eval",
        dest="evals",
        type=_named_path,
        action="append",
        required=True,
        metavar="METHOD[/seedN]=EVAL.json",
        help="an `lcp test --eval-out` file; repeatable. Name each seed's file METHOD/seedN "
        "for the mean and spread over seeds and the paired LCP - baseline per seed",
    )
    metrics.add_argument("--csv", required=True, help="the table, one row per method")
    metrics.add_argument("--markdown", help="summary page with the tables")
    metrics.add_argument("--plot", help="class-wise AP bar chart (png)")
    metrics.add_argument("--html", help="the summary page as HTML (what Snakemake's report shows in the page)")
    metrics.add_argument(
        "--samples",
        type=_named_path,
        action="append",
        default=[],
        metavar="METHOD=PICTURE",
        help="a sample detection picture shown in the --html page, methods side by side; repeatable, in image order",
    )
    metrics.add_argument("--title", default="results", help="title of the page and plot (e.g. the scene)")
    metrics.set_defaults(_main=main_metrics)
    robustness = sub.add_parser("robustness", help="AP of each method against a degradation parameter")
    robustness.add_argument(
        "--eval",
        dest="evals",
        type=_named_path,
        action="append",
        required=True,
        metavar="METHOD[/seedN]@PARAMETER_VALUE=EVAL.json",
        help="an `lcp test --eval-out` file, e.g. lcp@beta_0.02=... or lcp/seed1@beta_0.02=...; repeatable",
    )
    robustness.add_argument("--csv", required=True, help="long table: method, parameter, value, AP, AP50, AP75")
    robustness.add_argument("--plot", help="AP against the parameter (png)")
    robustness.add_argument("--html", help="the table as an HTML page")
    robustness.add_argument("--title", default="robustness", help="title of the plot (e.g. the scene)")
    robustness.set_defaults(_main=main_robustness)
    check = sub.add_parser("check", help="the data check (`lcp data check --report`) as an HTML page")
    check.add_argument("report", metavar="CHECK.json", help="the data check's json report")
    check.add_argument("--html", required=True, help="the page to write")
    check.set_defaults(_main=main_check)
    detections = sub.add_parser("detections", help="a detector's boxes on the first test images (jpg pictures)")
    detections.add_argument("config", help="mmdet config file the checkpoint was trained with (its data.test is drawn)")
    detections.add_argument("checkpoint", help="checkpoint file (.pth)")
    detections.add_argument(
        "--out",
        dest="outputs",
        action="append",
        required=True,
        metavar="PICTURE.jpg",
        help="a picture to write, one per test image in data-set order; repeatable",
    )
    add_cfg_options(detections)
    detections.add_argument("--gpu-id", type=int, default=0, help="GPU to use when there is one (default 0)")
    detections.set_defaults(_main=main_detections)


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


def _check_outputs(outputs: list[str | None], sources: list[str]) -> None:
    """Before anything is written: no output is an input, and no two outputs are one file."""
    from pathlib import Path

    from lcp.io import check_outside_sources

    seen = set()
    for output in filter(None, outputs):
        check_outside_sources(output, sources)
        if (resolved := Path(output).resolve()) in seen:
            raise LCPError(f"{output}: given for two outputs; give each its own file")
        seen.add(resolved)


def main_metrics(args: argparse.Namespace) -> int:
    from lcp.io import write_files
    from lcp.report.html import markdown_to_html, page, samples_html
    from lcp.report.metrics import (
        check_one_test_set,
        check_seed_names,
        classwise_table,
        group_by_method,
        method_statistics,
        metrics_table,
        one_decimal,
        several_seeds,
        summary_markdown,
        table_csv,
    )
    from lcp.report.plots import plot_classwise

    if args.samples and not args.html:
        raise LCPError("--samples: the pictures are shown in the --html page only; give --html PAGE too")
    _check_outputs([args.csv, args.markdown, args.plot, args.html], [path for _, path in args.evals + args.samples])
    evaluations = _load_all(args.evals)
    grouped = group_by_method(evaluations)
    check_seed_names(grouped)
    check_one_test_set(evaluations)
    # every page is made before any is published, and all are published together (write_files)
    table = metrics_table(evaluations)
    pages = {args.csv: table_csv(table)}
    summary = summary_markdown(args.title, evaluations, dict(args.evals)) if args.markdown or args.html else None
    if args.markdown:
        pages[args.markdown] = summary
    if args.html:
        samples: dict[str, list[str]] = {}
        for method, picture in args.samples:
            samples.setdefault(method, []).append(picture)
        body = markdown_to_html(summary)
        if samples:  # before the sources, which end the page
            sources = body.rindex("<h2>Sources</h2>")
            body = body[:sources] + samples_html(samples) + body[sources:]
        pages[args.html] = page(f"{args.title}: detection", body)
    if args.plot:
        mean, std = method_statistics(evaluations)
        several = several_seeds(grouped)
        pages[args.plot] = plot_classwise(
            classwise_table(mean),
            f"{args.title}: class-wise AP" + (" (mean and sample std over seeds)" if several else ""),
            errors=classwise_table(std) if several else None,
        )
    write_files(pages)
    print(table[["AP", "AP50", "AP75"]].to_string(float_format=one_decimal, na_rep="-"))
    return 0


def main_robustness(args: argparse.Namespace) -> int:
    from lcp.io import write_files
    from lcp.report.html import frame_to_html, page
    from lcp.report.metrics import robustness_means, robustness_table
    from lcp.report.plots import plot_robustness
    from lcp.workflow.scenes import severity_value

    _check_outputs([args.csv, args.plot, args.html], [path for _, path in args.evals])
    table = robustness_table(_load_all(args.evals))
    # the severities as exactly as the test sets' names give them (0.08123441 and 0.08123442 stay two)
    shown = table.assign(value=table["value"].map(severity_value))
    pages = {args.csv: shown.to_csv(index=False, float_format="%.2f")}
    if args.html:
        title = f"{args.title}: AP against {table['parameter'].iloc[0]}"
        body = f"<h1>{html.escape(title)}</h1>\n<p>COCO box AP in percent.</p>\n"
        ap_columns = [column for column in ("AP", "AP50", "AP75") if column in shown]
        as_text = shown.assign(**{column: shown[column].map(_two_decimals) for column in ap_columns})
        if "seed" in table:  # the comparison first: the per-seed table runs to methods x values x (seeds + 2) rows
            means = robustness_means(shown).reset_index()
            body += (
                "<h2>AP, mean ± sample standard deviation over seeds</h2>\n"
                + frame_to_html(means, number_columns=list(means.columns))
                + "<h2>Per seed</h2>\n"
            )
        pages[args.html] = page(title, body + frame_to_html(as_text, number_columns=["value", *ap_columns]))
    if args.plot:
        spread = " (mean and sample std over seeds)" if "seed" in table else ""
        pages[args.plot] = plot_robustness(table, f"{args.title}: AP against {table['parameter'].iloc[0]}{spread}")
    write_files(pages)
    print(shown.to_string(index=False, float_format=_two_decimals, na_rep="-"))
    return 0


def _two_decimals(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def check_report_problem(check: dict) -> str | None:
    """What in a data check report (`lcp data check --report`) lacks the shape its page reads."""

    def mapping_of_mappings(value: object) -> bool:
        return isinstance(value, dict) and all(isinstance(item, dict) for item in value.values())

    for key in ("errors", "warnings"):  # {reason: {"count": N, "items": [{...}, ...]}}
        found = check.get(key) or {}
        if not mapping_of_mappings(found) or not all(
            isinstance(entry.get("items", []), list) and all(isinstance(item, dict) for item in entry.get("items", []))
            for entry in found.values()
        ):
            return f"'{key}' must map each reason to {{count, items: [{{...}}]}}"
    if not isinstance(check.get("counts") or {}, dict):
        return "'counts' must map names to counts"
    if not isinstance(check.get("classes") or [], list):
        return "'classes' must be a list"
    summary = check.get("degradation_summary") or {}
    if not isinstance(summary, dict) or not mapping_of_mappings(summary.get("by_variant") or {}):
        return "'degradation_summary.by_variant' must map each variant to its statistics"
    return None


def main_check(args: argparse.Namespace) -> int:
    from lcp.io import read_json, write_text
    from lcp.report.html import check_html, page

    check = read_json(args.report)
    if not isinstance(check, dict) or "ok" not in check:
        raise LCPError(f"{args.report}: not a data check report (no 'ok' key)")
    if problem := check_report_problem(check):
        raise LCPError(f"{args.report}: not a data check report ({problem})")
    write_text(args.html, page("data check", check_html(check, args.report)), sources=[args.report])
    return 0


def main_detections(args: argparse.Namespace) -> int:
    from lcp.apis.options import parse_cfg_options
    from lcp.report.detections import draw_sample_detections

    _check_outputs(args.outputs, [args.config, args.checkpoint])  # one picture each: none written over another
    draw_sample_detections(
        args.config, args.checkpoint, args.outputs, parse_cfg_options(args.cfg_options), gpu_id=args.gpu_id
    )
    print(f"sample detections written: {', '.join(args.outputs)}")
    return 0
