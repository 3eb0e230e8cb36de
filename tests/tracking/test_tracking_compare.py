"""`lcp compare` reads logged evaluation runs back and sets them beside the paper's LCP numbers."""

import csv
import json
import os

import pytest

from lcp.cli import main as lcp
from lcp.tracking import log_evaluation


def metrics(ap, ap50, ap75):
    return {"bbox_mAP": ap, "bbox_mAP_50": ap50, "bbox_mAP_75": ap75, "classwise": {"car": ap}}


@pytest.fixture
def server_env(monkeypatch, mlflow_server):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    for name in ("LCP_INVOCATION_ID", "LCP_MLFLOW_PARENT_RUN_IDS", "LCP_SNAKEMAKE_RULE", "LCP_SNAKEMAKE_WILDCARDS"):
        monkeypatch.delenv(name, raising=False)


def test_compare_table_of_two_runs_with_paper_numbers_and_deltas(tmp_path, server_env, capsys):
    # an older lcp run is superseded by the newer one; a sweep point (variant) joins the robustness summary
    log_evaluation(metrics(0.10, 0.20, 0.05), scene="foggy_city", method="lcp", work_dir=tmp_path)
    log_evaluation(metrics(0.255, 0.43, 0.26), scene="foggy_city", method="baseline", work_dir=tmp_path)
    log_evaluation(metrics(0.305, 0.471, 0.312), scene="foggy_city", method="lcp", work_dir=tmp_path)
    log_evaluation(metrics(0.2, 0.3, 0.2), scene="foggy_city", method="lcp", variant="beta_0.04", work_dir=tmp_path)

    out_dir = tmp_path / "compare"
    capsys.readouterr()  # the runs' own lines
    assert lcp(["compare", "--experiment", "lcp/foggy_city", "--days", "1", "--out-dir", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    # runs without the tag lcp.seed: one run of an unknown seed each, no seeds listed, no spread
    assert "| foggy_city | lcp |  | 30.5 | 47.1 | 31.2 | 29.0 | 46.6 | 30.2 | +1.5 | +0.5 | +1.0 | +5.0 |" in printed
    assert "±" not in printed and "Per seed" not in printed
    # the sweep point is no row of the main table but of the robustness summary: P 30.5, mPC 20, rPC 65.6 %
    assert "| method | seeds | beta_0.04 | P (test set) | mPC | rPC (%) | mPC vs baseline |" in printed
    assert "| lcp |  | 20.0 | 30.5 | 20.0 | 65.6 |  |" in printed

    with open(out_dir / "compare.csv") as file:
        rows = {row["method"]: row for row in csv.DictReader(file)}
    assert set(rows) == {"baseline", "lcp"}
    lcp_row, baseline_row = rows["lcp"], rows["baseline"]
    assert [float(lcp_row[c]) for c in ("AP", "AP50", "AP75")] == pytest.approx([30.5, 47.1, 31.2])
    assert [float(lcp_row[c]) for c in ("paper AP", "paper AP50", "paper AP75")] == [29.0, 46.6, 30.2]
    assert [float(lcp_row[c]) for c in ("dAP", "dAP50", "dAP75")] == pytest.approx([1.5, 0.5, 1.0])
    assert float(lcp_row["AP vs baseline"]) == pytest.approx(5.0)
    assert float(baseline_row["AP"]) == pytest.approx(25.5) and baseline_row["paper AP"] == ""
    assert lcp_row["run name"] == "foggy_city/evaluate/lcp"
    assert (out_dir / "compare.md").read_text().startswith("| scene | method | seeds | AP |")
    assert (out_dir / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a rerun replaces its own folder and prints and writes the same table
    outputs = {path.name: path.read_bytes() for path in out_dir.iterdir() if path.suffix in (".csv", ".md")}
    assert lcp(["compare", "--experiment", "lcp/foggy_city", "--days", "1", "--out-dir", str(out_dir)]) == 0
    assert capsys.readouterr().out == printed
    assert {path.name: path.read_bytes() for path in out_dir.iterdir() if path.suffix in (".csv", ".md")} == outputs
    assert sorted(path.name for path in out_dir.iterdir()) == [
        ".lcp-output",
        "compare.csv",
        "compare.md",
        "compare.png",
        "compare_robustness.csv",
        "compare_robustness_seeds.csv",
        "compare_seeds.csv",
    ]
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".compare")] == []

    # a folder lcp did not write is never replaced; filters that match nothing are a clear error
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert lcp(["compare", "--experiment", "lcp/foggy_city", "--out-dir", str(mine)]) == 2
    assert "holds no .lcp-output" in capsys.readouterr().err
    assert [path.name for path in mine.iterdir()] == ["notes.txt"]
    assert (
        lcp(
            [
                "compare",
                "--experiment",
                "lcp/foggy_city",
                "--tag",
                "lcp.method=none",
                "--out-dir",
                str(tmp_path / "none"),
            ]
        )
        == 2
    )
    assert "no evaluation runs match" in capsys.readouterr().err
    assert lcp(["compare", "--experiment", "lcp/nonexistent", "--out-dir", str(tmp_path / "x")]) == 2
    assert "no such experiment" in capsys.readouterr().err
    assert lcp(["compare", "--since", "yesterday", "--out-dir", str(tmp_path / "y")]) == 2
    assert "not an ISO date" in capsys.readouterr().err


def test_evaluation_in_the_default_local_store_browsable_without_a_server(tmp_path, monkeypatch, capsys):
    """No URI anywhere: results/mlflow/mlflow.db (sqlite) and results/mlflow/artifacts, as documented."""
    from mlflow.tracking import MlflowClient

    for name in ("MLFLOW_TRACKING_URI", "LCP_INVOCATION_ID", "LCP_MLFLOW_PARENT_RUN_IDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    eval_json = tmp_path / "results" / "demo" / "eval.json"
    eval_json.parent.mkdir(parents=True)
    eval_json.write_text(json.dumps(metrics(0.5, 0.7, 0.55)))
    run_id = log_evaluation(eval_json, scene="demo", method="lcp", checkpoint=str(eval_json))

    client = MlflowClient("sqlite:///results/mlflow/mlflow.db")  # the relative URI of `mlflow ui --backend-store-uri`
    run = client.get_run(run_id)
    assert run.data.metrics["test/AP75"] == pytest.approx(55.0)  # percent, as lcp.tracking.metrics logs AP
    assert run.data.tags["lcp.checkpoint"] == str(eval_json)
    assert run.info.artifact_uri.startswith((tmp_path / "results" / "mlflow" / "artifacts").as_uri())
    assert list((tmp_path / "results" / "mlflow" / "artifacts").glob("lcp/demo/*/artifacts/evaluation/eval.json"))

    # compare reads that store into results/compare, twice alike, and never writes into or over the store
    assert lcp(["compare"]) == 0 and lcp(["compare"]) == 0
    assert (tmp_path / "results" / "compare" / "compare.md").read_text().count("| demo | lcp |") == 1
    for inside_or_over_the_store in ("results/mlflow/compare", "results"):
        assert lcp(["compare", "--out-dir", inside_or_over_the_store]) == 2
        assert "the source" in capsys.readouterr().err
    assert client.get_run(run_id).data.metrics["test/AP"] == pytest.approx(50.0)


def test_compare_over_seeds_mean_spread_and_paired_gain(tmp_path, server_env, monkeypatch, capsys):
    # baseline AP 25, 27, 29 and LCP 28, 31, 31 over seeds 0, 1, 2: LCP - baseline is 3, 4, 2
    for seed, (base, ours) in enumerate([(0.25, 0.28), (0.27, 0.31), (0.29, 0.31)]):
        monkeypatch.setenv("LCP_SEED", str(seed))  # what the workflow sets for a seed's evaluation job
        log_evaluation(metrics(base, base + 0.2, base), scene="rainy_city", method="baseline", work_dir=tmp_path)
        log_evaluation(metrics(ours, ours + 0.2, ours), scene="rainy_city", method="lcp", work_dir=tmp_path)
        # the robustness sweep: each seed's models on a rain_0.5 test set (AP 5 and 4 points lower)
        for method, ap in (("baseline", base - 0.05), ("lcp", ours - 0.04)):
            log_evaluation(
                metrics(ap, ap, ap), scene="rainy_city", method=method, variant="rain_0.5", work_dir=tmp_path
            )
    log_evaluation(metrics(0.5, 0.5, 0.5), scene="rainy_city", method="lcp", variant="by-hand", work_dir=tmp_path)
    monkeypatch.delenv("LCP_SEED")
    # an untagged run from before seeds were tagged does not count as a fourth seed
    log_evaluation(metrics(0.9, 0.9, 0.9), scene="rainy_city", method="lcp", work_dir=tmp_path)

    out_dir = tmp_path / "compare"
    capsys.readouterr()  # the runs' own lines
    assert lcp(["compare", "--experiment", "lcp/rainy_city", "--out-dir", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    assert (
        "| rainy_city | lcp | 0, 1, 2 | 30.0 ± 1.7 | 50.0 ± 1.7 | 30.0 ± 1.7 | 27.6 | 45.9 | 27.9 | +2.4 |" in printed
    )
    assert "| +3.0 ± 1.0 | rainy_city/evaluate/lcp |" in printed
    assert "| rainy_city | baseline | 0, 1, 2 | 27.0 ± 2.0 |" in printed
    assert "| rainy_city | lcp | 1 | 31.0 | 51.0 | 31.0 | +4.0 |" in printed  # the per-seed table
    # mPC over seeds: baseline 20, 22, 24 and LCP 24, 27, 27; rPC = mPC / test-set AP, e.g. 24 / 28 = 85.7 %;
    # paired mPC gain 4, 5, 3. A variant that is no severity (by-hand) is in neither table.
    assert "| baseline | 0, 1, 2 | 22.0 ± 2.0 | 27.0 ± 2.0 | 22.0 ± 2.0 | 81.4 ± 1.4 |  |" in printed
    assert "| lcp | 0, 1, 2 | 26.0 ± 1.7 | 30.0 ± 1.7 | 26.0 ± 1.7 | 86.6 ± 0.8 | +4.0 ± 1.0 |" in printed
    assert "by-hand" not in printed
    with open(out_dir / "compare_robustness_seeds.csv") as file:
        sweep = [(row["method"], row["seed"], float(row["mPC"]), float(row["rPC"])) for row in csv.DictReader(file)]
    assert sweep == [
        ("baseline", "0", 20.0, 80.0),
        ("baseline", "1", 22.0, 81.48),
        ("baseline", "2", 24.0, 82.76),
        ("lcp", "0", 24.0, 85.71),
        ("lcp", "1", 27.0, 87.1),
        ("lcp", "2", 27.0, 87.1),
    ]

    with open(out_dir / "compare.csv") as file:
        rows = {row["method"]: row for row in csv.DictReader(file)}
    assert float(rows["lcp"]["AP"]) == pytest.approx(30.0)
    assert float(rows["lcp"]["AP std"]) == pytest.approx(3**0.5, abs=0.01)
    assert float(rows["lcp"]["AP vs baseline"]) == pytest.approx(3.0)
    assert float(rows["lcp"]["AP vs baseline std"]) == pytest.approx(1.0)
    assert rows["lcp"]["seeds"] == "0, 1, 2" and float(rows["lcp"]["paired seeds"]) == 3
    with open(out_dir / "compare_seeds.csv") as file:
        seeds = [(row["method"], row["seed"], float(row["AP"])) for row in csv.DictReader(file)]
    assert seeds == [
        ("baseline", "0", 25.0),
        ("baseline", "1", 27.0),
        ("baseline", "2", 29.0),
        ("lcp", "0", 28.0),
        ("lcp", "1", 31.0),
        ("lcp", "2", 31.0),
    ]

    # the seed is a tag (for filters) and a param of each evaluation run
    assert (
        lcp(["compare", "--experiment", "lcp/rainy_city", "--tag", "lcp.seed=1", "--out-dir", str(tmp_path / "one")])
        == 0
    )
    assert "| rainy_city | lcp | 1 | 31.0 | 51.0 | 31.0 |" in capsys.readouterr().out
    from mlflow.tracking import MlflowClient

    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    run_id = rows["lcp"]["run id"].split()[1]
    assert client.get_run(run_id).data.params["seed"] == client.get_run(run_id).data.tags["lcp.seed"] == "1"

    # a seed tag set by hand to no number: that run is left out, with one line naming it
    (untagged,) = client.search_runs(
        [client.get_experiment_by_name("lcp/rainy_city").experiment_id], "metrics.`test/AP` > 80"
    )
    client.set_tag(untagged.info.run_id, "lcp.seed", "best")
    assert lcp(["compare", "--experiment", "lcp/rainy_city", "--out-dir", str(out_dir)]) == 0
    captured = capsys.readouterr()
    assert f"warning: run {untagged.info.run_id}: tag lcp.seed = 'best' is not a seed number; left out" in captured.err
    assert captured.out == printed


def test_an_evaluation_at_other_iou_thresholds_is_tagged_and_left_out_of_the_comparison(tmp_path, server_env, capsys):
    """`lcp test --eval-options iou_thrs=0.5` logged its AP50-like value as test/AP, and `lcp
    compare`, keeping the newest run, showed it as AP@[.5:.95]."""
    import mlflow

    log_evaluation(metrics(0.25, 0.43, 0.26), scene="foggy_city", method="baseline", work_dir=tmp_path)
    at_half = {**metrics(0.43, 0.43, None), "eval_options": {"iou_thrs": [0.5]}}
    run_id = log_evaluation(at_half, scene="foggy_city", method="baseline", work_dir=tmp_path)
    run = mlflow.get_run(run_id)
    assert run.data.params["iou_thrs"] == "0.5" and run.data.tags["lcp.iou_thrs"] == "0.5"
    capsys.readouterr()
    assert lcp(["compare", "--experiment", "lcp/foggy_city", "--days", "1", "--out-dir", str(tmp_path / "c")]) == 0
    captured = capsys.readouterr()
    assert "| foggy_city | baseline |  | 25.0 | 43.0 | 26.0 |" in captured.out
    assert "1 evaluation runs at other IoU thresholds than COCO's 0.50:0.95 (tag lcp.iou_thrs) left out" in captured.err


def test_seeds_and_severities_the_latest_workflow_run_dropped_are_left_out(tmp_path, server_env, monkeypatch, capsys):
    """`seeds: [0, 1, 2]` then `[0, 1]`: the report was over two seeds, lcp compare over three."""
    from lcp.tracking import close_invocation, open_invocation

    for seed in (0, 1, 2):
        monkeypatch.setenv("LCP_SEED", str(seed))
        for severity, ap in (("beta_0.02", 0.2), ("beta_0.08", 0.1)):
            log_evaluation(metrics(ap, ap, ap), scene="demo", method="lcp", variant=severity, work_dir=tmp_path)
        log_evaluation(metrics(0.3 + seed / 10, 0.5, 0.3), scene="demo", method="lcp", work_dir=tmp_path)
    monkeypatch.delenv("LCP_SEED")
    open_invocation(["demo"], plans={"demo": {"seeds": [0, 1], "variants": ["beta_0.02"]}})
    close_invocation("FINISHED")
    capsys.readouterr()
    assert lcp(["compare", "--experiment", "lcp/demo", "--out-dir", str(tmp_path / "compare")]) == 0
    out, err = capsys.readouterr()
    assert "| demo | lcp | 0, 1 | 35.0 ± 7.1 |" in out and "beta_0.08" not in out
    assert (
        "warning: demo: 5 evaluation runs of seeds or severities its latest workflow run no longer has "
        "(seeds 0, 1; severities beta_0.02) left out"
    ) in err


def test_evaluations_outside_the_workflow_carry_their_checkpoints_seed_and_compare_shows_each(
    tmp_path, server_env, monkeypatch, capsys
):
    """`lcp test --track` of two seeds' models outside the workflow (no LCP_SEED) tagged no seed, so
    lcp compare took them for one model and showed the newer evaluation alone, without a word."""
    import torch
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("LCP_SEED", raising=False)
    run_ids = []
    for seed, ap in ((3, 0.2), (4, 0.3)):
        checkpoint = tmp_path / f"seed{seed}.pth"
        torch.save({"state_dict": {}, "meta": {"seed": seed, "epoch": 1}}, checkpoint)
        run_ids.append(
            log_evaluation(
                metrics(ap, ap, ap), scene="own_seeds", method="lcp", checkpoint=str(checkpoint), work_dir=tmp_path
            )
        )
    unrecorded = tmp_path / "authors.pth"
    torch.save({"state_dict": {}}, unrecorded)  # a checkpoint of another tool: no seed to take
    run_ids.append(
        log_evaluation(metrics(0.1, 0.1, 0.1), scene="own_seeds", method="baseline", checkpoint=str(unrecorded))
    )

    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    runs = [client.get_run(run_id).data for run_id in run_ids]
    assert [data.tags.get("lcp.seed") for data in runs] == ["3", "4", None]
    assert [data.params.get("seed") for data in runs] == ["3", "4", None]
    assert lcp(["compare", "--out-dir", str(tmp_path / "compare")]) == 0
    with open(tmp_path / "compare" / "compare_seeds.csv") as file:
        seeds = sorted((row["method"], row["seed"]) for row in csv.DictReader(file) if row["scene"] == "own_seeds")
    assert seeds == [("baseline", ""), ("lcp", "3"), ("lcp", "4")]
