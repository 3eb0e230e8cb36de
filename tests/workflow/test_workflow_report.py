"""`lcp report metrics|robustness`: the per-scene tables and plots from eval files."""

from __future__ import annotations

import base64
import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_eval(path: Path, ap: float, classwise: dict, **extra) -> Path:
    metrics = {
        "bbox_mAP": ap,
        "bbox_mAP_50": ap + 0.2,
        "bbox_mAP_75": ap - 0.05,
        "bbox_mAP_s": None,
        "bbox_mAP_m": ap,
        "bbox_mAP_l": ap,
        "classwise": classwise,
        "num_images": 10,
        **extra,
    }
    path.write_text(json.dumps(metrics))
    return path


def lcp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lcp.cli", *args], check=False, capture_output=True, text=True, cwd=REPO
    )


def test_metrics_tables_and_plot(tmp_path):
    baseline = write_eval(tmp_path / "b.json", 0.30, {"car": 0.25, "person": 0.35, "bus": None})
    method = write_eval(tmp_path / "l.json", 0.34, {"car": 0.31, "person": 0.36, "bus": None})
    out = tmp_path / "report"
    result = lcp(
        "report",
        "metrics",
        "--title",
        "fog",
        "--eval",
        f"baseline={baseline}",
        "--eval",
        f"lcp={method}",
        "--csv",
        str(out / "metrics.csv"),
        "--markdown",
        str(out / "summary.md"),
        "--plot",
        str(out / "classwise.png"),
    )
    assert result.returncode == 0, result.stderr

    rows = {row["method"]: row for row in csv.DictReader((out / "metrics.csv").open())}
    assert list(rows) == ["baseline", "lcp"]
    assert float(rows["lcp"]["AP"]) == pytest.approx(34.0)
    assert float(rows["baseline"]["AP50"]) == pytest.approx(50.0)
    assert float(rows["lcp"]["AP[car]"]) == pytest.approx(31.0)
    assert rows["baseline"]["AP[bus]"] == ""  # no ground truth: empty, not 0

    summary = (out / "summary.md").read_text()
    assert "| baseline | 30.0 | 50.0 | 25.0 |" in summary
    assert "| LCP - baseline | 4.0 | 4.0 | 4.0 |" in summary
    assert "| car | 25.0 | 31.0 |" in summary and "| bus | - | - |" in summary
    assert "injection_oracle" not in summary  # no collapse, no pointer to its diagnosis
    assert (out / "classwise.png").read_bytes()[:8] == PNG_SIGNATURE
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_robustness_table_sorted_by_severity(tmp_path):
    evals = []
    for method, aps in (("lcp", (0.3, 0.2)), ("baseline", (0.25, 0.1))):
        for beta, ap in zip(("0.05", "0.01"), aps, strict=True):
            path = write_eval(tmp_path / f"{method}_{beta}.json", ap, {"car": ap})
            evals += ["--eval", f"{method}@beta_{beta}={path}"]
    result = lcp("report", "robustness", *evals, "--csv", str(tmp_path / "r.csv"), "--plot", str(tmp_path / "r.png"))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [(r["method"], r["parameter"], float(r["value"]), float(r["AP"])) for r in rows] == [
        ("baseline", "beta", 0.01, 10.0),
        ("baseline", "beta", 0.05, 25.0),
        ("lcp", "beta", 0.01, 20.0),
        ("lcp", "beta", 0.05, 30.0),
    ]
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize(
    "content, message",
    [
        ({"bbox_mAP": 0.3}, "missing bbox_mAP_50, bbox_mAP_75, classwise"),
        ({"bbox_mAP": 30.0, "bbox_mAP_50": 0.5, "bbox_mAP_75": 0.2, "classwise": {}}, "bbox_mAP = 30.0 is not an AP"),
        # a boolean read as AP 100 and a NaN as a number; a bad count or statistic crashed or passed
        ({"bbox_mAP": True, "bbox_mAP_50": 0.5, "bbox_mAP_75": 0.2, "classwise": {}}, "bbox_mAP = True is not an AP"),
        ({"bbox_mAP": math.nan, "bbox_mAP_50": 0.5, "bbox_mAP_75": 0.2, "classwise": {}}, "bbox_mAP = nan is not"),
        (
            {"bbox_mAP": 0.3, "bbox_mAP_50": 0.5, "bbox_mAP_75": 0.2, "classwise": {}, "num_images": "ten"},
            "num_images = 'ten' is not a count of images or null",
        ),
        (
            {
                "bbox_mAP": 0.3,
                "bbox_mAP_50": 0.5,
                "bbox_mAP_75": 0.2,
                "classwise": {},
                "crux_health": {"mask_std": math.inf},
            },
            "crux_health.mask_std = inf is not a number in [0, 1] or null",
        ),
        (None, "is a folder, not a json file"),
        ([0.3, 0.5], "not an evaluation file (expected a json object from `lcp test --eval-out`)"),
        (
            {"bbox_mAP": 0.3, "bbox_mAP_50": 0.5, "bbox_mAP_75": 0.2, "classwise": [0.3]},
            "'classwise' must map class names to AP",
        ),
        (
            {"bbox_mAP": 0.3, "bbox_mAP_50": 0.5, "bbox_mAP_75": 0.2, "classwise": {}, "crux_health": 0.5},
            "crux_health must be a json object of mask statistics",
        ),
    ],
)
def test_bad_eval_file_is_one_clear_line(tmp_path, content, message):
    bad = tmp_path / "eval.json"
    if content is None:
        bad.mkdir()
    else:
        bad.write_text(json.dumps(content))
    result = lcp("report", "metrics", "--eval", f"lcp={bad}", "--csv", str(tmp_path / "m.csv"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"lcp report: error: {bad}: ") and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m.csv").exists()


@pytest.mark.parametrize(
    "names, message",
    [
        (["lcp"], "lcp report metrics: error: argument --eval: 'lcp': expected NAME=PATH"),
        (["lcp=b.json", "lcp=b.json"], "--eval lcp=...: given twice"),
    ],
)
def test_bad_eval_names_are_one_line(tmp_path, names, message):
    write_eval(tmp_path / "b.json", 0.3, {"car": 0.3})
    evals = [item for name in names for item in ("--eval", name)]
    result = subprocess.run(
        [sys.executable, "-m", "lcp.cli", "report", "metrics", *evals, "--csv", "m.csv"],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "m.csv").exists()


@pytest.mark.parametrize("variant", ["strong", "beta_inf"])  # an infinite severity was a sweep point
def test_bad_sweep_name(tmp_path, variant):
    path = write_eval(tmp_path / "e.json", 0.3, {"car": 0.3})
    result = lcp("report", "robustness", "--eval", f"lcp@{variant}={path}", "--csv", str(tmp_path / "r.csv"))
    assert result.returncode == 2 and not (tmp_path / "r.csv").exists()
    assert result.stderr == (
        f"lcp report: error: lcp@{variant}: expected METHOD@PARAMETER_VALUE, e.g. lcp@beta_0.02 "
        "(or lcp/seed1@beta_0.02)\n"
    )


def test_the_printed_tables_show_a_missing_ap_as_the_pages_do(tmp_path):
    """They printed NaN where the html and markdown pages show '-'."""
    baseline = write_eval(tmp_path / "b.json", 0.3, {"car": 0.3}, bbox_mAP=None)
    method = write_eval(tmp_path / "l.json", 0.35, {"car": 0.35})
    evals = ["--eval", f"baseline={baseline}", "--eval", f"lcp={method}"]
    result = lcp("report", "metrics", *evals, "--csv", str(tmp_path / "m.csv"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2:] == ["baseline    -  50.0  25.0", "lcp      35.0  55.0  30.0"]
    evals = ["--eval", f"baseline@beta_0.02={baseline}", "--eval", f"lcp@beta_0.02={method}"]
    result = lcp("report", "robustness", *evals, "--csv", str(tmp_path / "r.csv"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "baseline      beta  0.02     - 50.00 25.00",
        "     lcp      beta  0.02 35.00 55.00 30.00",
    ]


def crux_health(mean: float, collapsed: bool = False) -> dict:
    verdict = f"crux learner collapsed: the mask is flat, {mean} on every pixel" if collapsed else None
    return {
        "mask_mean": mean,
        "mask_std": 0.2,
        "mask_frac_above_half": 0.3,
        "mask_spatial_std": 0.1,
        "collapsed": collapsed,
        "verdict": verdict,
    }


def test_metrics_over_seeds_mean_spread_and_paired_gain(tmp_path):
    # baseline AP 30, 32, 34 and LCP 33, 36, 36 over seeds 0, 1, 2: LCP - baseline is 3, 4, 2
    evals = []
    for seed, (base, ours) in enumerate([(0.30, 0.33), (0.32, 0.36), (0.34, 0.36)]):
        baseline = write_eval(tmp_path / f"b{seed}.json", base, {"car": base, "bus": None})
        method = write_eval(
            tmp_path / f"l{seed}.json",
            ours,
            {"car": ours - 0.01, "bus": None},
            crux_health=crux_health(0.2 * (seed + 1), collapsed=seed == 1),
        )
        evals += ["--eval", f"baseline/seed{seed}={baseline}", "--eval", f"lcp/seed{seed}={method}"]
    out = tmp_path / "report"
    result = lcp(
        "report",
        "metrics",
        "--title",
        "fog",
        *evals,
        "--csv",
        str(out / "metrics.csv"),
        "--markdown",
        str(out / "summary.md"),
        "--plot",
        str(out / "classwise.png"),
    )
    assert result.returncode == 0, result.stderr

    rows = {(row["method"], row["seed"]): row for row in csv.DictReader((out / "metrics.csv").open())}
    assert list(rows) == [
        (method, seed) for method in ("baseline", "lcp", "LCP - baseline") for seed in ("0", "1", "2", "mean", "std")
    ]
    assert float(rows["baseline", "mean"]["AP"]) == pytest.approx(32.0)
    assert float(rows["baseline", "std"]["AP"]) == pytest.approx(2.0)
    assert float(rows["lcp", "mean"]["AP"]) == pytest.approx(35.0)
    assert float(rows["lcp", "std"]["AP"]) == pytest.approx(3**0.5, abs=0.01)
    assert [float(rows["LCP - baseline", seed]["AP"]) for seed in ("0", "1", "2", "mean", "std")] == pytest.approx(
        [3.0, 4.0, 2.0, 3.0, 1.0]
    )
    assert float(rows["lcp", "mean"]["AP[car]"]) == pytest.approx(34.0)
    # the crux statistics beside AP for LCP, none for the baseline
    assert float(rows["lcp", "mean"]["crux_mask_mean"]) == pytest.approx(0.4)
    assert float(rows["lcp", "1"]["crux_collapsed"]) == 1.0 and rows["lcp", "std"]["crux_collapsed"] == ""
    assert rows["baseline", "0"]["crux_mask_mean"] == ""

    summary = (out / "summary.md").read_text()
    assert "mean ± sample standard deviation (n - 1) over seeds 0, 1, 2" in summary
    assert "| baseline | 0, 1, 2 | 32.0 ± 2.0 | 52.0 ± 2.0 | 27.0 ± 2.0 |" in summary
    assert "| lcp | 0, 1, 2 | 35.0 ± 1.7 |" in summary
    assert "| 1 | 4.0 | 4.0 | 4.0 |" in summary and "| mean | 3.0 |" in summary and "| std | 1.0 |" in summary
    assert "| lcp | 2 | 36.0 | 56.0 | 31.0 |" in summary  # every seed's numbers
    # one plain sentence for the collapsed seed, with lcp test's verdict
    assert "\nLCP (seed 1): crux learner collapsed: the mask is flat, 0.4 on every pixel.\n" in summary
    assert summary.count("collapsed:") == 1
    assert summary.count("`bench/injection_oracle.py`") == 1  # where to look next, once for all seeds
    assert "| lcp | 0 | 0.2 | 0.2 | 0.3 | 0.1 | no |" in summary
    assert "| lcp | mean | 0.4 | 0.2 | 0.3 | 0.1 | 1 of 3 |" in summary
    assert "## Class-wise AP (mean over seeds)" in summary and "| car | 32.0 | 34.0 |" in summary
    assert "- lcp/seed2: `" in summary
    assert (out / "classwise.png").read_bytes()[:8] == PNG_SIGNATURE


def test_over_many_seeds_the_ap_table_comes_before_each_seeds_collapse_verdict(tmp_path):
    # five collapsed seeds' verdicts stood between the title and the AP table: in Snakemake's report
    # pane they filled the first screen and more
    evals = []
    for seed in (0, 1, 2, 5, 10):
        baseline = write_eval(tmp_path / f"b{seed}.json", 0.30, {"car": 0.30})
        health = crux_health(0.01, collapsed=seed != 2)
        method = write_eval(tmp_path / f"l{seed}.json", 0.31, {"car": 0.31}, crux_health=health)
        evals += ["--eval", f"baseline/seed{seed}={baseline}", "--eval", f"lcp/seed{seed}={method}"]
    result = lcp("report", "metrics", *evals, "--csv", str(tmp_path / "m.csv"), "--markdown", str(tmp_path / "s.md"))
    assert result.returncode == 0, result.stderr
    summary = (tmp_path / "s.md").read_text()
    top = "\nLCP: crux learner collapsed in 4 of 5 seeds (0, 1, 5, 10); each seed's verdict is under Crux learner"
    assert summary.index(top) < summary.index("| method | seeds |") < summary.index("## Crux learner")
    assert summary.index("## Crux learner") < summary.index("\nLCP (seed 0): crux learner collapsed: the mask is")
    assert summary.count("collapsed:") == 4 and "LCP (seed 2)" not in summary


def test_numbers_are_rounded_once_when_shown(tmp_path):
    # rounded to 0.01 when read and to 0.1 when shown, 20.2270 - 20.5815 = -0.3545 read -0.3
    # and 7.6451 read 7.7; spreads came from the rounded values, a crux mean of 0.000265 read 0.0003
    evals = []
    for seed, (base, ours, small) in enumerate([(0.20, 0.20037, 0.07), (0.205815, 0.202270, 0.076451)]):
        baseline = write_eval(tmp_path / f"b{seed}.json", base, {"car": base}, bbox_mAP_m=small)
        health = {**crux_health(0.5, collapsed=True), "mask_std": 0.000265 + seed * 2e-6}
        method = write_eval(tmp_path / f"l{seed}.json", ours, {"car": ours}, bbox_mAP_m=small, crux_health=health)
        evals += ["--eval", f"baseline/seed{seed}={baseline}", "--eval", f"lcp/seed{seed}={method}"]
    for name, title, args in (
        ("metrics", [], ["--csv", str(tmp_path / "m.csv"), "--markdown", str(tmp_path / "summary.md")]),
        ("robustness", [], ["--csv", str(tmp_path / "r.csv")]),
    ):
        sweep = [e.replace("=", "@beta_0.05=", 1) if "=" in e else e for e in evals] if name == "robustness" else evals
        result = lcp("report", name, *title, *sweep, *args)
        assert result.returncode == 0, result.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert "| 1 | -0.4 |" in summary  # LCP - baseline on seed 1
    assert "| 0 | 0.0 |" in summary and "-0.0" not in summary  # +0.037 and no negative zero
    assert "| lcp | 1 | 20.2 | 40.2 | 15.2 | - | 7.6 |" in summary
    rows = {(row["method"], row["seed"]): row for row in csv.DictReader((tmp_path / "m.csv").open())}
    assert rows["lcp", "mean"]["crux_mask_std"] == "0.000266"
    assert float(rows["baseline", "std"]["AP"]) == pytest.approx(math.dist([20.0], [20.5815]) / 2**0.5, abs=0.005)
    robustness = {(row["method"], row["seed"]): row for row in csv.DictReader((tmp_path / "r.csv").open())}
    assert robustness["baseline", "std"]["AP"] == "0.41"  # 0.4112 from 20.0 and 20.5815, not 0.4172 from 20.58
    assert robustness["baseline", "1"]["AP"] == "20.58" and robustness["lcp", "0"]["AP"] == "20.04"


def test_an_ap_shows_as_lcp_test_prints_it_in_every_table(tmp_path):
    # AP 0.1905 is 19.05 percent, a little above as a double: `lcp test` prints 19.1; numpy's
    # rounding (by way of 190.5) gave 19.0 for the mean over seeds and in the printed table
    from lcp.apis.evaluation import format_metrics

    evals = []
    for seed in (0, 1):
        for method, ap in (("baseline", 0.17), ("lcp", 0.1905)):
            path = write_eval(tmp_path / f"{method}{seed}.json", ap, {"car": ap})
            evals += ["--eval", f"{method}/seed{seed}={path}"]
    assert format_metrics(json.loads((tmp_path / "lcp0.json").read_text())).startswith("AP  19.1 ")
    result = lcp("report", "metrics", *evals, "--csv", str(tmp_path / "m.csv"), "--markdown", str(tmp_path / "s.md"))
    assert result.returncode == 0, result.stderr
    summary = (tmp_path / "s.md").read_text()
    assert "| lcp | 0, 1 | 19.1 ± 0.0 |" in summary and "| lcp | 0 | 19.1 |" in summary
    lines = result.stdout.splitlines()
    lcp_rows = lines[lines.index(next(line for line in lines if line.startswith("lcp"))) :][:3]
    assert [line.split()[-3] for line in lcp_rows] == ["19.1", "19.1", "19.1"]  # seeds 0, 1 and their mean


def test_a_value_one_seed_lacks_gets_no_mean_over_the_other_seeds(tmp_path):
    # the table says "over seeds 0, 1, 2": a mean of seeds 0 and 1 under it was silently wrong
    evals = []
    for seed in range(3):
        baseline = write_eval(tmp_path / f"b{seed}.json", 0.30, {"car": 0.30})
        method = write_eval(tmp_path / f"l{seed}.json", 0.32 + seed / 100, {"car": 0.3})
        if seed == 2:
            method.write_text(json.dumps({**json.loads(method.read_text()), "bbox_mAP_50": None}))
        evals += ["--eval", f"baseline/seed{seed}={baseline}", "--eval", f"lcp/seed{seed}={method}"]
    out = ["--csv", str(tmp_path / "m.csv"), "--markdown", str(tmp_path / "summary.md")]
    result = lcp("report", "metrics", *evals, *out)
    assert result.returncode == 0, result.stderr
    rows = {(row["method"], row["seed"]): row for row in csv.DictReader((tmp_path / "m.csv").open())}
    assert rows["lcp", "mean"]["AP50"] == "" and float(rows["lcp", "mean"]["AP"]) == pytest.approx(33.0)
    assert rows["LCP - baseline", "mean"]["AP50"] == ""
    assert "| lcp | 0, 1, 2 | 33.0 ± 1.0 | - |" in (tmp_path / "summary.md").read_text()


def test_one_seed_with_crux_health_keeps_the_table_and_says_when_it_collapsed(tmp_path):
    baseline = write_eval(tmp_path / "b.json", 0.30, {"car": 0.30})
    # a collapsed mask's statistics are tiny: they keep their significant digits
    health = {**crux_health(0.5, collapsed=True), "mask_spatial_std": 0.00034}
    method = write_eval(tmp_path / "l.json", 0.31, {"car": 0.31}, crux_health=health)
    out = tmp_path / "report"
    result = lcp(
        "report",
        "metrics",
        "--eval",
        f"baseline={baseline}",
        "--eval",
        f"lcp={method}",
        "--csv",
        str(out / "metrics.csv"),
        "--markdown",
        str(out / "summary.md"),
    )
    assert result.returncode == 0, result.stderr
    rows = {row["method"]: row for row in csv.DictReader((out / "metrics.csv").open())}
    assert list(rows) == ["baseline", "lcp"] and "seed" not in rows["lcp"]
    assert float(rows["lcp"]["crux_mask_mean"]) == pytest.approx(0.5) and rows["baseline"]["crux_mask_mean"] == ""
    assert rows["lcp"]["crux_mask_spatial_std"] == "0.00034"
    summary = (out / "summary.md").read_text()
    assert "| LCP - baseline | 1.0 | 1.0 | 1.0 |" in summary
    assert "±" not in summary and "seed" not in summary.split("## Sources")[0]
    assert "\nLCP: crux learner collapsed: the mask is flat, 0.5 on every pixel.\n" in summary
    assert "| lcp | 0.5 | 0.2 | 0.3 | 0.00034 | yes |" in summary


def test_the_crux_mean_over_seeds_is_none_where_a_seed_lacks_the_statistic(tmp_path):
    # "mask > 0.5" of seeds 0 and 1 (0.3 and none): the page's mean row showed 0.3, the mean of
    # seed 0 alone, under seeds 0 and 1 (the csv's mean of the same column was empty)
    evals = []
    for seed, above in enumerate([0.3, None]):
        health = {**crux_health(0.5), "mask_frac_above_half": above}
        path = write_eval(tmp_path / f"l{seed}.json", 0.3, {"car": 0.3}, crux_health=health)
        evals += ["--eval", f"lcp/seed{seed}={path}"]
    result = lcp("report", "metrics", *evals, "--csv", str(tmp_path / "m.csv"), "--markdown", str(tmp_path / "s.md"))
    assert result.returncode == 0, result.stderr
    rows = {(row["method"], row["seed"]): row for row in csv.DictReader((tmp_path / "m.csv").open())}
    assert rows["lcp", "mean"]["crux_mask_frac_above_half"] == ""
    assert "| lcp | mean | 0.5 | 0.2 | - | 0.1 | 0 of 2 |" in (tmp_path / "s.md").read_text()


def test_robustness_over_seeds(tmp_path):
    evals = []
    for method, aps in (("baseline", (0.20, 0.24)), ("lcp", (0.25, 0.27))):
        for seed, ap in enumerate(aps):
            path = write_eval(tmp_path / f"{method}{seed}.json", ap, {"car": ap})
            evals += ["--eval", f"{method}/seed{seed}@beta_0.05={path}"]
    result = lcp("report", "robustness", *evals, "--csv", str(tmp_path / "r.csv"), "--plot", str(tmp_path / "r.png"))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [(r["method"], r["seed"], r["parameter"], r["value"]) for r in rows] == [
        (method, seed, "beta", "0.05") for method in ("baseline", "lcp") for seed in ("0", "1", "mean", "std")
    ]
    assert [float(r["AP"]) for r in rows] == pytest.approx([20, 24, 22, 2 * 2**0.5, 25, 27, 26, 2**0.5], abs=0.005)
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG_SIGNATURE


def test_robustness_page_over_seeds_leads_with_the_methods_side_by_side(tmp_path):
    # with 5 seeds and 6 severities the page was one table of 84 rows: method, seed, then mean and std
    evals = []
    for method, offset in (("baseline", 0.0), ("lcp", 0.02)):
        for seed, ap in zip((0, 1, 2, 5, 10), (0.20, 0.24, 0.22, 0.21, 0.23), strict=True):
            for beta, drop in (("0.02", 0.0), ("0.16", 0.1)):
                path = write_eval(tmp_path / f"{method}{seed}_{beta}.json", ap + offset - drop, {"car": ap})
                evals += ["--eval", f"{method}/seed{seed}@beta_{beta}={path}"]
    result = lcp("report", "robustness", *evals, "--csv", str(tmp_path / "r.csv"), "--html", str(tmp_path / "r.html"))
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "r.html").read_text()
    means = page.index("<h2>AP, mean ± sample standard deviation over seeds</h2>")
    assert means < page.index("<h2>Per seed</h2>") < page.index("<td>baseline</td>")
    row = '<tr><td class="number">{}</td><td class="number">{}</td><td class="number">{}</td></tr>'
    assert row.format("0.02", "22.0 ± 1.6", "24.0 ± 1.6") in page[means:]
    assert row.format("0.16", "12.0 ± 1.6", "14.0 ± 1.6") in page[means:]


def test_robustness_outputs_keep_every_digit_of_a_severity_and_a_seed(tmp_path):
    # %.4g wrote both severities as 0.08123 and seed 12345 as 1.234e+04
    evals = []
    for beta in ("0.08123441", "0.08123442"):
        for seed in (12345, 12346):
            path = write_eval(tmp_path / f"{beta}_{seed}.json", 0.2, {"car": 0.2})
            evals += ["--eval", f"lcp/seed{seed}@beta_{beta}={path}"]
    outputs = ["--csv", str(tmp_path / "r.csv"), "--html", str(tmp_path / "r.html")]
    result = lcp("report", "robustness", *evals, *outputs)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert sorted({r["value"] for r in rows}) == ["0.08123441", "0.08123442"]
    html = (tmp_path / "r.html").read_text()
    assert '<tr><td>lcp</td><td class="number">12345</td><td>beta</td><td class="number">0.08123442</td>' in html


def test_report_pages_are_utf8_whatever_the_locale(tmp_path):
    # under the C locale the summary's '±' could not be written, after the csv was
    baseline = [write_eval(tmp_path / f"b{seed}.json", 0.3 + seed / 100, {"car": 0.3}) for seed in (0, 1)]
    method = [write_eval(tmp_path / f"l{seed}.json", 0.32 + seed / 100, {"car": 0.3}) for seed in (0, 1)]
    evals = [f"baseline/seed{seed}={path}" for seed, path in enumerate(baseline)]
    evals += [f"lcp/seed{seed}={path}" for seed, path in enumerate(method)]
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "lcp.cli", "report", "metrics", *(item for e in evals for item in ("--eval", e))]
        + ["--csv", str(tmp_path / "m.csv"), "--markdown", str(tmp_path / "summary.md")],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "30.5 ± 0.7" in (tmp_path / "summary.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "names, message",
    [
        (["lcp/seed1", "lcp"], "lcp: lcp is given both with and without a seed"),
        (["lcp/1"], "lcp/1: expected METHOD or METHOD/seedN"),
        # a plain method beside seeded ones crashed the summary with a traceback
        (["baseline", "lcp/seed0", "lcp/seed1"], "baseline: given without a seed beside lcp/seed0"),
    ],
)
def test_bad_seed_names(tmp_path, names, message):
    path = write_eval(tmp_path / "e.json", 0.3, {"car": 0.3})
    evals = [item for name in names for item in ("--eval", f"{name}={path}")]
    result = lcp("report", "metrics", *evals, "--csv", str(tmp_path / "m.csv"), "--markdown", str(tmp_path / "s.md"))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.glob("*.md")) + list(tmp_path.glob("*.csv"))


def test_one_seed_each_shows_lcp_minus_baseline_only_for_the_same_seed(tmp_path):
    baseline = write_eval(tmp_path / "b.json", 0.30, {"car": 0.3})
    method = write_eval(tmp_path / "l.json", 0.31, {"car": 0.3})
    for lcp_seed, shown in ((0, True), (1, False)):
        evals = ["--eval", f"baseline/seed0={baseline}", "--eval", f"lcp/seed{lcp_seed}={method}"]
        result = lcp(
            "report", "metrics", *evals, "--csv", str(tmp_path / "m.csv"), "--markdown", str(tmp_path / "s.md")
        )
        assert result.returncode == 0, result.stderr
        summary = (tmp_path / "s.md").read_text()
        assert ("| LCP - baseline | 1.0 |" in summary) == shown, summary
        assert (
            "LCP - baseline is not shown: LCP was trained with seed 1, the baseline with seed 0." in summary
        ) != shown


def test_several_seeds_without_a_seed_both_methods_trained_say_why_lcp_minus_baseline_is_missing(tmp_path):
    # with one seed each the page said why; with seeds 0, 1 against 2, 3 the section was left out silently
    evals = []
    for seed in range(4):
        method = "lcp" if seed < 2 else "baseline"
        path = write_eval(tmp_path / f"{seed}.json", 0.3 + seed / 100, {"car": 0.3})
        evals += ["--eval", f"{method}/seed{seed}={path}"]
    result = lcp("report", "metrics", *evals, "--csv", str(tmp_path / "m.csv"), "--markdown", str(tmp_path / "s.md"))
    assert result.returncode == 0, result.stderr
    summary = (tmp_path / "s.md").read_text()
    assert "\nLCP - baseline is not shown: LCP was trained with seeds 0, 1, the baseline with seeds 2, 3.\n" in summary
    assert "LCP - baseline" not in {row["method"] for row in csv.DictReader((tmp_path / "m.csv").open())}


def test_a_report_writes_no_output_over_an_input_and_nothing_when_an_input_is_bad(tmp_path):
    baseline = write_eval(tmp_path / "b.json", 0.30, {"car": 0.3})
    before = baseline.read_bytes()
    evals = ["--eval", f"baseline={baseline}", "--eval", f"lcp={write_eval(tmp_path / 'l.json', 0.31, {'car': 0.3})}"]
    for option in ("--csv", "--markdown", "--html", "--plot"):
        outputs = {"--csv": str(tmp_path / "m.csv"), option: str(baseline)}
        result = lcp("report", "metrics", *evals, *(item for pair in outputs.items() for item in pair))
        assert result.returncode == 2 and f"{baseline}: is the source {baseline}" in result.stderr, result.stderr
        assert baseline.read_bytes() == before and not (tmp_path / "m.csv").exists()
    result = lcp("report", "metrics", *evals, "--csv", str(tmp_path / "m.csv"), "--markdown", str(tmp_path / "m.csv"))
    assert result.returncode == 2 and "m.csv: given for two outputs" in result.stderr

    outputs = [
        "--csv",
        str(tmp_path / "m.csv"),
        "--markdown",
        str(tmp_path / "s.md"),
        "--html",
        str(tmp_path / "s.html"),
    ]
    assert lcp("report", "metrics", *evals, *outputs).returncode == 0
    written = {path: path.read_bytes() for path in tmp_path.glob("s.*")} | {
        tmp_path / "m.csv": (tmp_path / "m.csv").read_bytes()
    }
    newer = ["--eval", f"baseline={write_eval(tmp_path / 'b2.json', 0.20, {'car': 0.2})}", *evals[2:]]
    missing_picture = ["--samples", f"lcp={tmp_path / 'gone.jpg'}"]
    result = lcp("report", "metrics", *newer, *outputs, *missing_picture)
    assert result.returncode == 2 and "gone.jpg" in result.stderr, result.stderr
    assert {path: path.read_bytes() for path in written} == written  # the old set, whole

    # a folder where the page goes: refused before any output is published (the csv, the summary
    # and the plot were written, then the page failed)
    (tmp_path / "new.html").mkdir()
    others = {"--csv": tmp_path / "new.csv", "--markdown": tmp_path / "new.md", "--plot": tmp_path / "new.png"}
    result = lcp(
        "report", "metrics", *evals, "--html", str(tmp_path / "new.html"), *(str(x) for o in others.items() for x in o)
    )
    assert result.returncode == 2 and f"{tmp_path / 'new.html'}: is a folder, not a file" in result.stderr
    assert not [path for path in others.values() if path.exists()]


def test_robustness_refuses_a_mean_curve_over_different_seeds(tmp_path):
    path = write_eval(tmp_path / "e.json", 0.3, {"car": 0.3})
    names = ["lcp/seed0@beta_0.02", "lcp/seed1@beta_0.02", "lcp/seed0@beta_0.04"]
    evals = [item for name in names for item in ("--eval", f"{name}={path}")]
    result = lcp("report", "robustness", *evals, "--csv", str(tmp_path / "r.csv"))
    assert result.returncode == 2 and not (tmp_path / "r.csv").exists()
    assert "lcp: seeds 0, 1 at beta_0.02 but 0 at beta_0.04; give every point of the sweep the same seeds" in (
        result.stderr
    ), result.stderr


def test_bad_crux_health_is_one_clear_line(tmp_path):
    bad = write_eval(tmp_path / "l.json", 0.3, {"car": 0.3}, crux_health={"mask_mean": "high", "collapsed": False})
    result = lcp("report", "metrics", "--eval", f"lcp={bad}", "--csv", str(tmp_path / "m.csv"))
    assert result.returncode == 2
    assert f"{bad}: crux_health.mask_mean = 'high' is not a number in [0, 1] or null" in result.stderr


def test_html_summary_has_the_tables_and_the_samples_side_by_side(tmp_path):
    import cv2
    import numpy as np

    baseline = write_eval(tmp_path / "b.json", 0.30, {"car": 0.25, "bus": None})
    method = write_eval(tmp_path / "l.json", 0.34, {"car": 0.31, "bus": None})
    pictures = []
    for name in ("b0", "l0", "b1", "l1"):
        cv2.imwrite(str(tmp_path / f"{name}.jpg"), np.full((40, 1000, 3), 128, np.uint8))
        pictures.append(tmp_path / f"{name}.jpg")
    samples = [
        item
        for method_name, picture in zip(["baseline", "lcp"] * 2, pictures, strict=True)
        for item in ("--samples", f"{method_name}={picture}")
    ]
    page = tmp_path / "summary.html"
    result = lcp(
        "report",
        "metrics",
        "--title",
        "fog",
        "--eval",
        f"baseline={baseline}",
        "--eval",
        f"lcp={method}",
        "--csv",
        str(tmp_path / "m.csv"),
        "--html",
        str(page),
        *samples,
    )
    assert result.returncode == 0, result.stderr
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<h1>fog: detection on the low-quality test set</h1>" in html
    # the markdown table as an HTML table, numbers right-aligned, a class without ground truth as '-'
    assert "<th>method</th><th>AP</th><th>AP50</th>" in html
    assert '<tr><td>baseline</td><td class="number">30.0</td><td class="number">50.0</td>' in html
    assert '<tr><td>bus</td><td class="number">-</td><td class="number">-</td></tr>' in html
    assert "<code>" + str(baseline) + "</code>" in html and "|" not in html.split("<body>")[1]
    # two rows of samples, one column per method, embedded and shrunk to 640 px wide; before the sources
    samples_part = html[html.index("<h2>Sample detections</h2>") : html.index("<h2>Sources</h2>")]
    assert "<th>image</th><th>baseline</th><th>lcp</th>" in samples_part
    assert samples_part.count("<img src=\"data:image/jpeg;base64,") == 4 and "test image 2" in samples_part
    first = samples_part.split("base64,")[1].split('"')[0]
    shrunk = cv2.imdecode(np.frombuffer(base64.b64decode(first), np.uint8), cv2.IMREAD_COLOR)
    assert shrunk.shape[1] == 640


def test_class_names_with_table_characters_stay_in_their_cells(tmp_path):
    # the config schema allows `|` and backticks in class names: the markdown table escapes
    # them and the HTML page shows them as they are
    classes = {"car|van": 0.25, "a`b`": 0.3, "person": 0.35}
    baseline = write_eval(tmp_path / "b.json", 0.30, classes)
    method = write_eval(tmp_path / "l.json", 0.34, {name: ap + 0.01 for name, ap in classes.items()})
    evals = [item for name, path in (("baseline", baseline), ("lcp", method)) for item in ("--eval", f"{name}={path}")]
    outputs = {"--csv": "m.csv", "--markdown": "summary.md", "--html": "summary.html"}
    result = lcp(
        "report", "metrics", *evals, *(i for flag, name in outputs.items() for i in (flag, str(tmp_path / name)))
    )
    assert result.returncode == 0, result.stderr
    assert "| car\\|van | 25.0 | 26.0 |" in (tmp_path / "summary.md").read_text()
    html = (tmp_path / "summary.html").read_text()
    assert '<tr><td>car|van</td><td class="number">25.0</td><td class="number">26.0</td></tr>' in html
    assert '<tr><td>a`b`</td><td class="number">30.0</td>' in html


def test_html_robustness_table(tmp_path):
    evals = []
    for method, ap in (("baseline", 0.2), ("lcp", 0.25)):
        path = write_eval(tmp_path / f"{method}.json", ap, {"car": ap})
        evals += ["--eval", f"{method}@beta_0.05={path}"]
    result = lcp(
        "report",
        "robustness",
        "--title",
        "fog",
        *evals,
        "--csv",
        str(tmp_path / "r.csv"),
        "--html",
        str(tmp_path / "r.html"),
    )
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "r.html").read_text()
    assert "<h1>fog: AP against beta</h1>" in html
    assert '<tr><td>lcp</td><td>beta</td><td class="number">0.05</td><td class="number">25.00</td>' in html


def test_data_check_page(tmp_path):
    check = {
        "ok": False,
        "lowq_dir": "data/x/foggy",
        "clean_dir": "data/x/clear",
        "degradation": "fog",
        "classes": ["car", "person"],
        "counts": {"lowq_images": 10, "pairs": 9},
        "errors": {"missing_pair": {"count": 1, "items": [{"file": "a.jpg", "detail": "no clean image"}]}},
        "warnings": {},
        "degradation_summary": {"statistic": "transmission", "by_variant": {"beta_0.02": {"images": 9, "mean": 0.81}}},
    }
    path = tmp_path / "check.json"
    path.write_text(json.dumps(check))
    result = lcp("report", "check", str(path), "--html", str(tmp_path / "check.html"))
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "check.html").read_text()
    assert '<p class="failed">Failed.</p>' in html and "<td>car, person</td>" in html
    assert "<li>missing_pair: 1 (first: file: a.jpg, detail: no clean image)</li>" in html
    assert '<tr><td>lowq images</td><td class="number">10</td></tr>' in html
    assert '<tr><td>beta_0.02</td><td class="number">9</td><td class="number">0.81</td></tr>' in html
    assert "Warnings" not in html  # none found: no empty section


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", "not a data check report (no 'ok' key)"),
        ("{", "check.json: "),
        # a hand-edited report of another shape was a traceback
        ('{"ok": false, "errors": ["missing image"]}', "'errors' must map each reason to {count, items"),
        ('{"ok": true, "warnings": {"r": {"count": 1, "items": ["a.jpg"]}}}', "'warnings' must map each reason"),
        ('{"ok": true, "counts": 5}', "'counts' must map names to counts"),
        ('{"ok": true, "classes": "car"}', "'classes' must be a list"),
        ('{"ok": true, "degradation_summary": {"by_variant": [1]}}', "'degradation_summary.by_variant' must map"),
    ],
)
def test_bad_data_check_is_one_clear_line(tmp_path, content, message):
    path = tmp_path / "check.json"
    path.write_text(content)
    result = lcp("report", "check", str(path), "--html", str(tmp_path / "check.html"))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "check.html").exists()


def test_sample_detections_must_be_jpeg(tmp_path):
    result = lcp(
        "report",
        "detections",
        "config/mmdet/lcp_tiny_demo.py",
        str(tmp_path / "model.pth"),
        "--out",
        str(tmp_path / "sample.png"),
    )
    assert result.returncode == 2
    assert f"{tmp_path / 'sample.png'}: sample detections are JPEG pictures" in result.stderr


def test_samples_without_the_html_page_they_go_into_are_refused(tmp_path):
    """They were left out without a word (written nowhere, exit 0)."""
    method = write_eval(tmp_path / "l.json", 0.3, {"car": 0.3})
    outputs = ["--csv", str(tmp_path / "m.csv"), "--markdown", str(tmp_path / "s.md")]
    result = lcp("report", "metrics", "--eval", f"lcp={method}", *outputs, "--samples", f"lcp={tmp_path / 'l_0.jpg'}")
    assert result.returncode == 2 and result.stderr == (
        "lcp report: error: --samples: the pictures are shown in the --html page only; give --html PAGE too\n"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["l.json"]


def test_the_classwise_plot_marks_a_class_without_ap_instead_of_a_bar_of_0(tmp_path, monkeypatch):
    import pandas as pd

    from lcp.report import plots

    saved = []
    monkeypatch.setattr(plots, "_png", lambda figure: saved.append(figure))
    classwise = pd.DataFrame(
        {"baseline": [30.0, 0.0, math.nan], "lcp": [31.0, 0.0, math.nan]}, index=["circle", "square", "triangle"]
    )
    plots.plot_classwise(classwise, "fog", errors=classwise * 0 + 1)
    (figure,) = saved
    labels = [(text.get_text(), round(text.get_position()[0], 2)) for text in figure.axes[0].texts]
    assert [label for label, _ in labels] == ["n/a", "n/a"]  # triangle (no ground truth) for both methods
    assert all(1.5 < x < 2.5 for _, x in labels)  # at the third class; square's 0.0 stays a bar of 0


def test_the_classwise_plots_legend_covers_no_bar_and_no_error_bar(monkeypatch):
    # eight classes near the same AP left the legend no free corner: it sat over an error bar
    import pandas as pd

    from lcp.report import plots

    saved = []
    monkeypatch.setattr(plots, "_png", lambda figure: saved.append(figure))
    classes = ["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]
    classwise = pd.DataFrame({"baseline": [29.1, 23.0, 24.3, 23.6, 28.8, 20.0, 29.2, 29.8]}, index=classes)
    classwise["lcp"] = classwise["baseline"] + [-4.1, 7.0, 0.7, 4.2, -5.2, 1.0, -5.6, -2.7]
    plots.plot_classwise(classwise, "foggy_city", errors=classwise * 0 + 6)
    (figure,) = saved
    figure.canvas.draw()
    axes = figure.axes[0]
    assert axes.get_legend().get_window_extent().x0 >= axes.get_window_extent().x1


@pytest.mark.parametrize(
    "other, message",
    [
        ({"num_images": 8}, "lcp: evaluated on images 8, but baseline on 10"),
        (
            {"classwise": {"car": 0.3, "star": 0.1}},
            "lcp: evaluated on classes ['car', 'star'], but baseline on ['car']",
        ),
    ],
)
def test_evaluations_of_two_test_sets_are_not_compared(tmp_path, other, message):
    """LCP - baseline was reported between evaluations of 8 and 10 images, or of other classes."""
    baseline = write_eval(tmp_path / "b.json", 0.30, {"car": 0.30})
    method = write_eval(tmp_path / "l.json", 0.31, {"car": 0.31})
    method.write_text(json.dumps({**json.loads(method.read_text()), **other}))
    evals = [f"--eval=baseline={baseline}", f"--eval=lcp={method}"]
    result = lcp("report", "metrics", *evals, "--csv", str(tmp_path / "m.csv"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"lcp report: error: {message}; a report compares evaluations of one test set"
    assert not (tmp_path / "m.csv").exists()
