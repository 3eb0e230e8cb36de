"""`lcp compare`'s tables and plot without a tracking server: mmdetection's robustness summary
(lcp.tracking.robustness) over seeds, and the AP plot's bars and legend."""

import math

import pandas as pd
import pytest

from lcp.tracking.comparison_output import ap_figure
from lcp.tracking.robustness import method_summary, seed_summary, severities


def evaluation(ap):
    return {"bbox_mAP": ap, "classwise": {}}


def test_mpc_and_rpc_per_seed_their_mean_and_spread_and_the_paired_mpc_gain(capsys):
    test = {
        "baseline/seed0": evaluation(0.20),
        "baseline/seed1": evaluation(0.22),
        "lcp/seed0": evaluation(0.21),
        "lcp/seed1": evaluation(0.23),
    }
    sweep = {
        "baseline/seed0@beta_0.02": evaluation(0.24),
        "baseline/seed0@beta_0.08": evaluation(0.12),
        "baseline/seed1@beta_0.02": evaluation(0.26),
        "baseline/seed1@beta_0.08": evaluation(0.14),
        "lcp/seed0@beta_0.02": evaluation(0.25),
        "lcp/seed0@beta_0.08": evaluation(0.15),
        "lcp/seed1@beta_0.08": evaluation(0.15),
        "lcp/seed1@beta_0.02": evaluation(0.29),
        "lcp/seed2@beta_0.02": evaluation(0.30),
    }  # seed 2 lacks beta_0.08 (and a test-set run)

    seeds = seed_summary(test, sweep, where="demo: ")
    assert severities(seeds) == ["beta_0.02", "beta_0.08"]
    # mmdetection: mPC = mean over the severities, rPC = mPC / P; P is the test-set AP here
    assert seeds.loc[("baseline", "0"), ["P", "mPC", "rPC"]].tolist() == pytest.approx([20.0, 18.0, 90.0])
    assert seeds.loc[("lcp", "1"), ["P", "mPC", "rPC"]].tolist() == pytest.approx([23.0, 22.0, 100 * 22 / 23])
    assert math.isnan(seeds.loc[("lcp", "2"), "mPC"])
    assert capsys.readouterr().err == "warning: demo: lcp/seed2: no evaluation of beta_0.08; no mPC for it\n"

    summary = method_summary(seeds)
    assert summary.loc["lcp", "seeds"] == "0, 1" and summary.loc["baseline", "seeds"] == "0, 1"
    assert summary.loc["baseline", ["mPC", "mPC std"]].tolist() == pytest.approx([19.0, 2**0.5])
    assert summary.loc["baseline", "rPC"] == pytest.approx((90.0 + 100 * 20 / 22) / 2)
    assert summary.loc["lcp", ["beta_0.02", "beta_0.08", "P"]].tolist() == pytest.approx([27.0, 15.0, 22.0])
    assert summary.loc["lcp", ["mPC vs baseline", "mPC vs baseline std", "paired seeds"]].tolist() == pytest.approx(
        [2.0, 0.0, 2]
    )
    assert math.isnan(summary.loc["baseline", "mPC vs baseline"])


def test_every_column_of_a_method_is_over_the_same_seeds(capsys):
    """A seed with a sweep but no test-set run has no P: it used to count in mPC and not in P
    and rPC, so the row's rPC was not its mPC / P."""
    test = {"lcp/seed0": evaluation(0.40), "lcp/seed1": evaluation(0.40)}
    sweep = {f"lcp/seed{seed}@beta_0.02": evaluation(ap) for seed, ap in ((0, 0.30), (1, 0.30), (2, 0.10))}
    seeds = seed_summary(test, sweep, where="demo: ")
    assert capsys.readouterr().err == "warning: demo: lcp/seed2: no evaluation on the test set; no P or rPC for it\n"
    summary = method_summary(seeds)
    assert summary.loc["lcp", "seeds"] == "0, 1"
    assert summary.loc["lcp", ["P", "mPC", "rPC"]].tolist() == pytest.approx([40.0, 30.0, 75.0])


def test_a_test_set_ap_of_0_gives_no_rpc_instead_of_inf(capsys):
    test = {"lcp/seed0": evaluation(0.0), "lcp/seed1": evaluation(0.40)}
    sweep = {f"lcp/seed{seed}@beta_0.02": evaluation(ap) for seed, ap in ((0, 0.01), (1, 0.30))}
    seeds = seed_summary(test, sweep, where="demo: ")
    assert capsys.readouterr().err == "warning: demo: lcp/seed0: AP 0 on the test set; no rPC for it (mPC / P)\n"
    assert math.isnan(seeds.loc[("lcp", "0"), "rPC"]) and seeds.loc[("lcp", "1"), "rPC"] == pytest.approx(75.0)
    summary = method_summary(seeds)
    assert summary.loc["lcp", "mPC"] == pytest.approx(15.5) and math.isnan(summary.loc["lcp", "rPC"])


def test_one_run_per_method_without_seeds_has_no_spread():
    seeds = seed_summary(
        {"lcp": evaluation(0.30), "baseline": evaluation(0.25)},
        {"lcp@rain_0.5": evaluation(0.24), "baseline@rain_0.5": evaluation(0.15)},
    )
    summary = method_summary(seeds)
    assert summary.loc["lcp", ["mPC", "rPC", "mPC vs baseline"]].tolist() == pytest.approx([24.0, 80.0, 9.0])
    assert summary.loc["lcp", "seeds"] == ""
    assert summary[["mPC std", "rPC std", "mPC vs baseline std"]].isna().all().all()


def test_the_robustness_csv_of_two_sweeps_keeps_each_severity_before_the_statistics():
    # a second scene's sweep of another parameter came after the first's P, mPC, rPC, stds and paired
    # count; the count itself was written 2.00
    import csv
    import io

    from lcp.tracking.comparison_output import robustness_csv

    seeds, summaries = {}, {}
    for scene, severity in (("foggy_city", "beta_0.02"), ("rainy_city", "rain_0.5")):
        test = {f"{method}/seed{seed}": evaluation(0.3) for method in ("baseline", "lcp") for seed in (2, 10)}
        sweep = {f"{name}@{severity}": evaluation(0.2) for name in test}
        seeds[scene] = seed_summary(test, sweep)
        summaries[scene] = method_summary(seeds[scene])
    summary_csv, seeds_csv = robustness_csv(summaries, seeds)
    summary = list(csv.DictReader(io.StringIO(summary_csv)))
    assert list(summary[0])[:8] == ["scene", "method", "seeds", "beta_0.02", "rain_0.5", "P", "mPC", "rPC"]
    assert [row["paired seeds"] for row in summary] == ["", "2", "", "2"]
    per_seed = list(csv.DictReader(io.StringIO(seeds_csv)))
    assert list(per_seed[0]) == ["scene", "method", "seed", "beta_0.02", "rain_0.5", "P", "mPC", "rPC"]
    assert [row["seed"] for row in per_seed[:2]] == ["2", "10"]


def _table(rows):
    return pd.DataFrame(rows, columns=["scene", "method", "AP", "AP std", "paper AP"])


def test_the_plot_draws_the_papers_bar_and_legend_entry_only_where_the_paper_reports_the_scene():
    demo = _table([["demo", "baseline", 17.3, 0.5, math.nan], ["demo", "lcp", 16.9, 0.9, math.nan]])
    figure = ap_figure(demo)
    axis = figure.axes[0]
    assert [text.get_text() for text in axis.get_legend().get_texts()] == ["ours (AP, ± sample std over seeds)"]
    assert [patch.get_height() for patch in axis.patches] == pytest.approx([17.3, 16.9])
    figure.canvas.draw()  # the legend sits right of the axes, over no bar and no error bar
    legend = axis.get_legend().get_window_extent()
    assert legend.x0 >= axis.get_window_extent().x1

    both = _table([["demo", "lcp", 16.9, 0.9, math.nan], ["foggy_city", "lcp", 27.5, math.nan, 29.0]])
    axis = ap_figure(both).axes[0]
    assert [text.get_text() for text in axis.get_legend().get_texts()] == [
        "ours (AP, ± sample std over seeds)",
        "paper LCP-50 (AP)",
    ]
    assert [patch.get_height() for patch in axis.patches] == pytest.approx([16.9, 27.5, 29.0])
    paper_bar, ours_beside = axis.patches[2], axis.patches[1]
    assert paper_bar.get_x() > ours_beside.get_x()  # beside foggy_city's own bar, not demo's


def test_a_row_over_several_seeds_names_all_of_their_runs():
    # the mean over seeds 0-2 was named after whichever seed's run finished last
    from lcp.tracking.comparison import _runs_name

    names = ["demo/evaluate/lcp/seed0", "demo/evaluate/lcp/seed2", "demo/evaluate/lcp/seed1"]
    assert _runs_name(names) == "demo/evaluate/lcp/seed*"
    assert _runs_name(["demo/evaluate/lcp"]) == "demo/evaluate/lcp"
    assert _runs_name(["demo/evaluate/lcp/seed0", "old name"]) == "demo/evaluate/lcp/seed0, old name"


def test_runs_that_evaluated_other_test_annotations_than_the_newest_are_left_out(capsys):
    """A baseline evaluated before the test set was converted again was compared with an LCP
    evaluated after, as LCP - baseline, without a word."""
    from lcp.tracking.comparison import TEST_SET_DIGEST, _one_test_set

    runs = pd.DataFrame(  # newest first, as selected_runs orders them
        {
            "run_id": ["new-lcp", "old-baseline", "sweep", "untracked", "other-scene"],
            "tags.mlflow.runName": ["demo/evaluate/lcp", "demo/evaluate/baseline", "s", "u", "o"],
            "tags.lcp.scene": ["demo", "demo", "demo", "demo", "urpc"],
            "_variant": ["", "", "beta_0.02", "", ""],
            TEST_SET_DIGEST: ["b" * 64, "a" * 64, "c" * 64, None, "a" * 64],
        }
    )
    kept = _one_test_set(runs, "tags.lcp.scene")
    assert list(kept["run_id"]) == ["new-lcp", "sweep", "untracked", "other-scene"]
    assert capsys.readouterr().err == (
        "warning: run old-baseline (demo/evaluate/baseline) evaluated other test annotations (sha256 aaaaaaaaaaaa) "
        "than the newest run of its scene (bbbbbbbbbbbb); left out\n"
    )


def test_evaluations_of_a_model_trained_over_since_are_left_out(capsys):
    """A retraining that failed (its checkpoint removed by the workflow) left the old model's AP
    shown as the current result. A training of the same scene, method and seed elsewhere (a trial
    in /tmp) is another model."""
    from lcp.tracking.comparison import selected_runs

    t = pd.Timestamp
    columns = ["run_id", "tags.mlflow.runName", "tags.lcp.scene", "tags.lcp.method", "tags.lcp.seed", "start_time"]

    def runs(rows, where_column, where):
        frame = pd.DataFrame(rows, columns=columns).assign(status="FINISHED", end_time=t("2026-11-29 12:00"))
        return frame.assign(**{where_column: where})

    results = "/w/results/demo"
    evaluations = runs(  # newest first
        [
            ["lcp-0", "demo/evaluate/lcp/seed0", "demo", "lcp", "0", t("2026-11-29 10:00")],
            ["base-1", "demo/evaluate/baseline/seed1", "demo", "baseline", "1", t("2026-11-29 09:30")],
            ["base-0", "demo/evaluate/baseline/seed0", "demo", "baseline", "0", t("2026-11-29 09:00")],
        ],
        "tags.lcp.checkpoint",
        [f"{results}/{run}/latest.pth" for run in ("lcp/seed0", "baseline/seed1", "baseline/seed0")],
    ).assign(**{"metrics.test/AP": 20.0})
    trainings = runs(
        [
            ["train-b0-new", "demo/train/baseline/seed0", "demo", "baseline", "0", t("2026-11-29 11:00")],
            ["trial-l0", "demo/train/lcp/seed0", "demo", "lcp", "0", t("2026-11-29 10:30")],
            ["train-l0", "demo/train/lcp/seed0", "demo", "lcp", "0", t("2026-11-29 08:00")],
            ["train-b1", "demo/train/baseline/seed1", "demo", "baseline", "1", t("2026-11-29 08:00")],
            ["train-b0-old", "demo/train/baseline/seed0", "demo", "baseline", "0", t("2026-11-29 08:00")],
        ],
        "tags.lcp.work_dir",
        [
            f"{results}/baseline/seed0/work",
            "/tmp/try",
            f"{results}/lcp/seed0/work",
            f"{results}/baseline/seed1/work",
            f"{results}/baseline/seed0/work",
        ],
    )
    trainings.loc[0, "status"] = "FAILED"
    assert sorted(selected_runs(evaluations)["run id"]) == ["base-0", "base-1", "lcp-0"]
    capsys.readouterr()
    assert sorted(selected_runs(evaluations, trainings)["run id"]) == ["base-1", "lcp-0"]
    assert capsys.readouterr().err == (
        f"warning: run base-0 (demo/evaluate/baseline/seed0) evaluated {results}/baseline/seed0/latest.pth, trained "
        "again since (run demo/train/baseline/seed0, FAILED); left out\n"
    )
