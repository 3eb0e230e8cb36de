"""lcp.workflow.tracking without Snakemake or an MLflow store: the scenes an invocation opens
parent runs for, and the shell text that tracking.smk's params and log_artifacts hand a job
(its environment, its `lcp train/test` flags, the log-artifacts step its command ends with)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest
from snakemake.iocontainers import OutputFiles, Wildcards  # what Snakemake passes params and shell formatting
from snakemake.utils import format as snakemake_format  # the formatting of a rule's `shell:`

from helpers.workflow import repo_config
from lcp.workflow import tracking


def wildcards(**values):
    return Wildcards(fromdict=values)


def config_with(enabled=True, uri="", run=("demo",)):
    config = repo_config()
    config["tracking"] = {"enabled": enabled, "uri": uri}
    config["run"] = list(run)
    return config


def no_seed(wildcards):
    raise AssertionError("the seed is not asked for without tracking")


# ---- scenes of an invocation ----------------------------------------------------------------


def test_tracked_scenes_are_those_run_and_those_of_the_jobs():
    config = config_with(run=["demo"])
    jobs = [
        wildcards(scene="urpc", method="lcp", seed_dir=""),
        wildcards(dataset="city", imageset="foggy"),  # a data set's job: the folder's first scene
        wildcards(),  # a job without wildcards (`all`)
        wildcards(scene="demo"),
    ]
    assert tracking.tracked_scenes(config, jobs) == ["demo", "foggy_city", "urpc"]


def test_tracked_scenes_take_plain_mappings_and_no_jobs():
    config = config_with(run=["urpc", "demo"])
    assert tracking.tracked_scenes(config, []) == ["demo", "urpc"]
    assert tracking.tracked_scenes(config, [{"dataset": "city"}, {"dataset": ""}]) == ["demo", "foggy_city", "urpc"]


def test_uri_and_descriptions_of_the_invocation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert tracking.configured_uri(config_with(uri="")) == f"sqlite:///{tmp_path.resolve()}/results/mlflow/mlflow.db"
    assert tracking.configured_uri(config_with(uri="http://head:5000")) == "http://head:5000"
    config = config_with()
    descriptions = tracking.scene_descriptions(config)
    assert list(descriptions) == list(config["scenes"])
    assert descriptions["demo"] == config["scenes"]["demo"].get("description")


# ---- a job's flags and environment ---------------------------------------------------------


def test_flags_name_the_run_of_an_evaluation_with_its_severity():
    flags = tracking.job_flags(
        config_with(), wildcards(scene="demo", method="lcp", seed_dir="", severity="beta0.08"), "evaluate"
    )
    assert flags == "--track --scene demo --step evaluate --method lcp --variant beta0.08"


def test_flags_without_a_severity_take_the_rule_s_method():
    job = wildcards(scene="foggy_city", seed_dir="seed1/")
    assert tracking.job_flags(config_with(), job, "train", "baseline") == (
        "--track --scene foggy_city --step train --method baseline"
    )
    # an empty {severity} (the plain test set) names no variant
    job = wildcards(scene="demo", method="baseline", severity="")
    assert (
        tracking.job_flags(config_with(), job, "evaluate") == "--track --scene demo --step evaluate --method baseline"
    )


def test_without_tracking_jobs_say_no_track_and_carry_nothing():
    config = config_with(enabled=False)
    assert not tracking.enabled(config)
    assert tracking.job_flags(config, wildcards(scene="demo", method="lcp"), "evaluate") == "--no-track"
    assert tracking.job_env(config, "evaluate", wildcards(scene="demo", method="lcp"), no_seed) == ""
    # the check and report jobs keep their command, log-artifacts learns from the environment
    assert tracking.tracking_switch(config) == {"LCP_TRACKING": "off"}
    assert tracking.tracking_switch(config_with()) == {"LCP_TRACKING": "on"}


def test_job_env_names_rule_wildcards_and_seed():
    asked = []

    def job_seed(job):
        asked.append(dict(job.items()))
        return 7

    job = wildcards(scene="demo", method="lcp", seed_dir="seed7/", severity="")
    env = tracking.job_env(config_with(), "evaluate_robustness", job, job_seed)
    assert asked == [{"scene": "demo", "method": "lcp", "seed_dir": "seed7/", "severity": ""}]
    words = dict(word.split("=", 1) for word in shlex.split(env))
    assert words.keys() == {"LCP_SNAKEMAKE_RULE", "LCP_SNAKEMAKE_WILDCARDS", "LCP_SEED"}
    assert words["LCP_SNAKEMAKE_RULE"] == "evaluate_robustness"
    # empty wildcards are left out of the run's tags
    assert json.loads(words["LCP_SNAKEMAKE_WILDCARDS"]) == {"scene": "demo", "method": "lcp", "seed_dir": "seed7/"}
    assert words["LCP_SEED"] == "7"


# ---- the log-artifacts end of a check or report job ----------------------------------------


def test_log_artifacts_is_a_shell_pattern_with_its_braces_escaped():
    fragment = tracking.log_artifacts("report_robustness", "report", "robustness")
    assert fragment == (
        " && LCP_SNAKEMAKE_RULE=report_robustness"
        """ LCP_SNAKEMAKE_WILDCARDS='{{"scene": "{wildcards.scene}"}}'"""
        " lcp tracking log-artifacts {output:q} --scene {wildcards.scene:q} --step report --variant robustness"
    )


@pytest.mark.parametrize(
    ("rule_name", "step", "variant", "tail"),
    [
        ("check_data", "check", None, ["--step", "check"]),
        ("report_robustness", "report", "robustness", ["--step", "report", "--variant", "robustness"]),
    ],
)
def test_log_artifacts_formatted_by_snakemake(rule_name, step, variant, tail):
    fragment = tracking.log_artifacts(rule_name, step, variant)
    command = snakemake_format(
        "lcp data check" + fragment,
        wildcards=wildcards(scene="foggy_city"),
        output=OutputFiles(["results/foggy_city/check/report.json", "results/foggy_city/a b.md"]),
    )
    before, after = command.split(" && ")
    assert before == "lcp data check"
    words = shlex.split(after)
    assert words[:2] == [f"LCP_SNAKEMAKE_RULE={rule_name}", 'LCP_SNAKEMAKE_WILDCARDS={"scene": "foggy_city"}']
    assert words[2:] == [
        "lcp",
        "tracking",
        "log-artifacts",
        "results/foggy_city/check/report.json",
        "results/foggy_city/a b.md",
        "--scene",
        "foggy_city",
        *tail,
    ]


def test_building_the_dag_loads_none_of_the_tracking_clients():
    # what common.smk and tracking.smk import: the settings only, not the MLflow-facing modules
    code = (
        "import sys, lcp.workflow.session, lcp.workflow.tracking, lcp.tracking.settings; "
        "print(sorted(m for m in sys.modules if m.startswith(('lcp.tracking.', 'mlflow', 'mmcv'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['lcp.tracking.settings']"
    # and the lazily loaded names still resolve
    import lcp.tracking

    assert lcp.tracking.open_invocation.__module__ == "lcp.tracking.invocation"
    with pytest.raises(AttributeError, match="no attribute 'not_there'"):
        lcp.tracking.not_there  # noqa: B018


def test_log_artifacts_of_a_workflow_without_tracking_logs_nothing(tmp_path):
    report = tmp_path / "check.json"
    report.write_text("{}")
    env = {**os.environ, "LCP_TRACKING": "off", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    command = [sys.executable, "-m", "lcp.cli", "tracking", "log-artifacts", str(report), "--scene", "demo"]
    result = subprocess.run([*command, "--step", "check"], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout == "LCP_TRACKING=off: nothing logged\n", result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["check.json"]


def test_each_scene_s_parent_run_is_told_its_seeds_and_severities():
    """What lcp compare keeps: a seed or severity dropped from the config is left out there too."""
    plans = tracking.scene_plans(repo_config())
    assert plans["demo"] == {"seeds": [0, 1, 2], "variants": ["beta_0.02", "beta_0.08"]}
    assert plans["urpc"]["variants"] == [] and plans["urpc"]["seeds"] == [0]
