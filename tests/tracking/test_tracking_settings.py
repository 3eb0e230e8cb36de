"""Tracking URI precedence, names, MLflow-safe params, the env contract, class-wise table parsing."""

import json

import pytest
from mlflow.utils.validation import _validate_metric_name, _validate_param

from lcp.errors import LCPError
from lcp.tracking import add_tracking, settings
from lcp.tracking.classwise import ClasswiseCapture, parse_classwise_table
from lcp.tracking.client import clip
from lcp.tracking.params import flatten, safe_key


def test_tracking_uri_precedence_env_then_config_then_local_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    default = settings.resolve_target(None)
    assert default.uri == f"sqlite:///{tmp_path / 'results' / 'mlflow' / 'mlflow.db'}"
    assert default.artifact_location == (tmp_path / "results" / "mlflow" / "artifacts").as_uri()
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()  # inside a checkout, the store is at its root, wherever the command runs
    monkeypatch.chdir(tmp_path / "sub")
    assert settings.resolve_target(None).uri == default.uri

    assert settings.resolve_target("http://127.0.0.1:5000") == settings.TrackingTarget("http://127.0.0.1:5000", None)
    relative = settings.resolve_target("sqlite:///store/m.db")
    assert relative.artifact_location == (tmp_path / "sub" / "store" / "artifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://head-node:5000")
    assert settings.resolve_target("http://127.0.0.1:5000").uri == "http://head-node:5000"


def test_run_and_experiment_names(monkeypatch):
    assert settings.experiment_name("foggy_city") == "lcp/foggy_city"
    assert settings.run_name("foggy_city", "evaluate", "lcp") == "foggy_city/evaluate/lcp"
    assert settings.run_name("demo", "evaluate", "lcp", "beta_0.02") == "demo/evaluate/lcp/beta_0.02"
    # a scene's several seeds: three runs named alike in the UI's run list and compare view before
    monkeypatch.setenv("LCP_SNAKEMAKE_WILDCARDS", '{"method": "lcp", "scene": "demo", "seed_dir": "seed1/"}')
    assert settings.job_seed_name() == "seed1"
    assert settings.run_name("demo", "evaluate", "lcp", "beta_0.02", "seed1") == "demo/evaluate/lcp/beta_0.02/seed1"
    monkeypatch.setenv("LCP_SNAKEMAKE_WILDCARDS", '{"method": "lcp", "scene": "urpc"}')  # one seed: no folder
    assert settings.job_seed_name() is None
    with pytest.raises(LCPError, match="scene 'a/b'"):
        settings.run_name("a/b", "train", "lcp")


def test_flattened_config_keys_and_values_are_accepted_by_mlflow():
    config = {
        "model": {"backbone": {"depth": 50, "out_indices": (0, 1, 2, 3)}},
        "train_pipeline": [{"type": "LoadImageFromFile"}, {"type": "Resize", "img_scale": (1333, 800)}],
        "odd key (with) 'quotes'": {"a..b": 1, "../up": 2},
        "empty": {},
        "classes": ("car", "bus"),
        "long": "y" * 9000,
        "k" * 300: 1,
    }
    flat = flatten(config, "cfg")
    assert flat["cfg.model.backbone.depth"] == "50"
    assert flat["cfg.model.backbone.out_indices"] == "[0, 1, 2, 3]"
    assert flat["cfg.train_pipeline.1.img_scale"] == "[1333, 800]"
    assert flat["cfg.classes"] == '["car", "bus"]'
    assert flat["cfg.empty"] == "{}"
    assert len(flat) == 11  # no two keys collapsed into one
    for key, value in flat.items():
        _validate_param(key, clip(value, 6000))  # raises MlflowException if MLflow would refuse it
        _validate_metric_name(key)
    assert safe_key("k" * 300) == safe_key("k" * 300) != safe_key("k" * 299 + "j")


def test_snakemake_environment_contract(monkeypatch):
    prefix = settings.snakemake_env_prefix("train_lcp", {"scene": "demo", "method": "it's"})
    assert prefix.startswith("LCP_SNAKEMAKE_RULE=train_lcp LCP_SNAKEMAKE_WILDCARDS=")
    monkeypatch.setenv("LCP_SNAKEMAKE_WILDCARDS", json.dumps({"scene": "demo", "method": "it's"}))
    assert settings.snakemake_wildcards() == {"scene": "demo", "method": "it's"}
    monkeypatch.setenv("LCP_SNAKEMAKE_WILDCARDS", "scene=demo")
    from mmcv import Config

    cfg = Config(dict(log_config=dict(interval=5, hooks=[dict(type="TextLoggerHook")])))
    with pytest.raises(LCPError, match="LCP_SNAKEMAKE_WILDCARDS: not valid JSON"):
        add_tracking(cfg, scene="demo", step="train", method="lcp")
    monkeypatch.delenv("LCP_SNAKEMAKE_WILDCARDS")
    hook = add_tracking(cfg, scene="demo", step="train", method="lcp")
    add_tracking(cfg, scene="demo", step="train", method="lcp")  # twice: still one tracking hook
    assert [h["type"] for h in cfg.log_config.hooks] == ["TextLoggerHook", "LCPMlflowLoggerHook"]
    assert cfg.log_config.hooks[-1]["scene"] == hook["scene"] == "demo"


def test_the_tracking_hook_logs_the_losses_at_the_configs_log_interval(tmp_path, monkeypatch):
    """It logged every iteration whatever log_config.interval said: 15 metric rows per iteration,
    about 500k (150 MB of the MLflow store) per published training."""
    import logging

    import torch
    from mmcv import Config
    from mmcv.runner import EpochBasedRunner

    class Model(torch.nn.Module):
        def train_step(self, *args):
            raise AssertionError("not trained here")

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def intervals(**options):
        cfg = Config(dict(log_config=dict(interval=50, hooks=[dict(type="TextLoggerHook")])))
        add_tracking(cfg, scene="demo", step="train", method="lcp", **options)
        runner = EpochBasedRunner(Model(), work_dir=str(tmp_path), logger=logging.getLogger("test"))
        runner.register_logger_hooks(cfg.log_config)  # as mmdet's train_detector does
        return {type(hook).__name__: hook.interval for hook in runner.hooks}

    assert intervals() == {"TextLoggerHook": 50, "LCPMlflowLoggerHook": 50}
    assert intervals(interval=1) == {"TextLoggerHook": 50, "LCPMlflowLoggerHook": 1}


def test_the_training_seed_in_the_environment_becomes_the_tag_lcp_seed(monkeypatch):
    from lcp.tracking.params import runtime_tags

    # a one-seed scene's empty {seed_dir} wildcard is left out; the seed travels as LCP_SEED
    prefix = settings.snakemake_env_prefix("evaluate", {"scene": "demo", "method": "lcp", "seed_dir": ""}, seed=2)
    assert prefix == (
        "LCP_SNAKEMAKE_RULE=evaluate LCP_SNAKEMAKE_WILDCARDS='{\"method\": \"lcp\", \"scene\": \"demo\"}' LCP_SEED=2"
    )
    monkeypatch.delenv("LCP_SEED", raising=False)
    assert settings.job_seed() is None and "lcp.seed" not in runtime_tags()
    monkeypatch.setenv("LCP_SEED", "2")
    assert settings.job_seed() == 2 and runtime_tags()["lcp.seed"] == "2"
    monkeypatch.setenv("LCP_SEED", "two")
    with pytest.raises(LCPError, match="LCP_SEED: expected a non-negative integer seed, got 'two'"):
        settings.job_seed()


MMDET_TABLE = """
+----------+-------+----------+-------+----------+-------+
| category | AP    | category | AP    | category | AP    |
+----------+-------+----------+-------+----------+-------+
| person   | 0.312 | rider    | 0.405 | car      | nan   |
| traffic light | 0.050 | None     | None  | None     | None  |
+----------+-------+----------+-------+----------+-------+"""


def test_classwise_table_parsing():
    assert parse_classwise_table(MMDET_TABLE) == {"person": 0.312, "rider": 0.405, "traffic light": 0.05}
    assert parse_classwise_table("no table here") is None
    capture = ClasswiseCapture()
    import logging

    logger = logging.getLogger("lcp-test-classwise")
    logger.setLevel(logging.INFO)
    logger.addHandler(capture)
    logger.info("Evaluating segm...")
    logger.info("\n" + MMDET_TABLE)
    assert capture.pop() == {"segm": {"person": 0.312, "rider": 0.405, "traffic light": 0.05}}
    assert capture.pop() == {}


def test_a_store_mlflow_refuses_is_a_clear_error_before_training_and_never_journalled(tmp_path, monkeypatch):
    from mmcv import Config

    from lcp.tracking.run import TrackedRun

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    cfg = Config(dict(log_config=dict(interval=5, hooks=[])))
    with pytest.raises(LCPError, match="no longer writes the file store"):
        add_tracking(cfg, scene="demo", step="train", method="lcp", tracking_uri=(tmp_path / "mlruns").as_uri())
    run = TrackedRun(
        experiment="lcp/demo", run_name="demo/train/lcp", work_dir=tmp_path, tracking_uri=(tmp_path / "mlruns").as_uri()
    ).start()
    run.log_metrics({"train/loss": 1.0}, step=1)
    run.finish()
    assert run.disabled and not (tmp_path / "mlflow-pending").exists()


@pytest.mark.parametrize(
    "uri, message",
    [
        ("htp://127.0.0.1:5077", "MLflow has no store for 'htp:'; use sqlite:///PATH/mlflow.db or http://HOST:PORT"),
        ("postgresql://lcp@127.0.0.1/mlflow", "ModuleNotFoundError: No module named 'psycopg2'"),
    ],
    ids=["typo", "no-driver"],
)
def test_a_tracking_uri_mlflow_cannot_open_is_one_line_before_anything_runs(
    uri, message, tmp_path, capsys, monkeypatch
):
    """A typo in the scheme, or a database without its driver, was a traceback from deep in
    MLflow's client at the start of the workflow (open-invocation), or a training that went on
    untracked after one warning."""
    from lcp.cli import main as lcp

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(LCPError, match=f"^tracking URI {uri}: "):
        settings.check_target(settings.resolve_target(uri))
    assert lcp(["tracking", "open-invocation", "--scene", "demo", "--tracking-uri", uri]) == 2
    stderr = capsys.readouterr().err
    assert message in stderr and "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    for good in ("sqlite:///" + str(tmp_path / "mlflow.db"), "http://127.0.0.1:5000", "https://mlflow.example"):
        assert settings.check_target(settings.resolve_target(good)).uri == good
    assert not (tmp_path / "mlflow.db").exists()  # checking a sqlite URI creates nothing


@pytest.mark.parametrize("value", ["5s", "2.5", ""])
def test_an_mlflow_timeout_that_is_no_whole_number_is_one_line_naming_it(value, tmp_path, capsys, monkeypatch):
    """`lcp tracking uri` printed float()'s traceback for MLFLOW_HTTP_REQUEST_TIMEOUT=5s, and
    MLflow's own int() failed inside every tracked command's first request."""
    from lcp.cli import main as lcp

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", value)
    said = f"environment variable MLFLOW_HTTP_REQUEST_TIMEOUT={value!r}: not a whole number (lcp's default: 5)"
    for command in (["tracking", "uri"], ["compare", "--out-dir", str(tmp_path / "compare")]):
        assert lcp([*command, "--tracking-uri", "http://127.0.0.1:9"]) == 2
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [f"lcp {command[0]}: error: {said}"] and captured.out == ""


def test_a_hook_config_written_before_sidecars_went_still_builds():
    """Work-dir config copies and checkpoints hold the hook with its old `sidecars=[]`."""
    from mmcv.runner import HOOKS

    import lcp.tracking.hook  # noqa: F401  registers LCPMlflowLoggerHook

    hook = HOOKS.build(dict(type="LCPMlflowLoggerHook", scene="demo", step="train", method="lcp", sidecars=[]))
    assert hook.run_name == "demo/train/lcp"


def test_the_browse_command_names_lcps_own_mlflow_where_path_has_another_or_none(monkeypatch, tmp_path):
    """A newcomer who ran `make demo` has no activated venv: `mlflow ui` was "command not found"."""
    import shutil
    import sys
    from pathlib import Path

    own = Path(sys.executable).parent / "mlflow"
    assert own.exists()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no mlflow on PATH
    assert shutil.which("mlflow") is None
    assert settings.mlflow_ui_command("sqlite:///a b.db") == f"{own} ui --backend-store-uri 'sqlite:///a b.db'"
    monkeypatch.setenv("PATH", str(own.parent))
    assert settings.mlflow_ui_command("sqlite:///m.db") == "mlflow ui --backend-store-uri sqlite:///m.db"
    monkeypatch.setenv("PATH", "")
    monkeypatch.chdir(own.parent.parent.parent)  # the folder holding the venv: a path relative to it
    assert (
        settings.mlflow_ui_command("sqlite:///m.db")
        == f"{own.relative_to(Path.cwd())} ui --backend-store-uri sqlite:///m.db"
    )
    # in a workflow's job, whose PATH has the venv in front: the shell that started the workflow decides
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(own.parent))
    monkeypatch.setenv(settings.ENV_CALLER_PATH, str(tmp_path))
    assert settings.mlflow_ui_command("sqlite:///m.db") == f"{own} ui --backend-store-uri sqlite:///m.db"
