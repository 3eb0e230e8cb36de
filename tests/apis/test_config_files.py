"""lcp.apis.config.config_files: the chain of files a config inherits from, read without running it."""

from pathlib import Path

import pytest

from lcp.apis.config import config_files
from lcp.errors import LCPError

REPO = Path(__file__).resolve().parents[2]


def test_every_base_once_in_inheritance_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "schedule.py").write_text("lr = 0.1\n")
    (tmp_path / "b" / "model.py").write_text("_base_ = './schedule.py'\n")
    (tmp_path / "top.py").write_text("_base_ = ['b/model.py', 'b/schedule.py']\nx = 1\n")
    top = tmp_path / "top.py"
    assert config_files(top) == [str(top), *(str(tmp_path / "b" / name) for name in ("model.py", "schedule.py"))]
    assert config_files(tmp_path / "b" / "schedule.py") == [str(tmp_path / "b" / "schedule.py")]


def test_the_shipped_configs_resolve_to_files_that_exist():
    for config in sorted((REPO / "config" / "mmdet").glob("*.py")):
        files = config_files(config)
        assert all(Path(file).is_file() for file in files), config
        assert len(files) > 1, config  # every shipped config inherits


def test_a_missing_base_or_a_computed_one_is_one_line(tmp_path):
    (tmp_path / "top.py").write_text("_base_ = ['gone.py']\n")
    with pytest.raises(LCPError, match=r"gone.py: config file not found"):
        config_files(tmp_path / "top.py")
    (tmp_path / "top.py").write_text("import os\n_base_ = [os.path.join('a', 'b.py')]\n")
    with pytest.raises(LCPError, match=r"top.py: _base_ must be a file name or a list of them, written out"):
        config_files(tmp_path / "top.py")


def test_every_lcp_config_takes_the_options_lcp_s_own_messages_suggest():
    """A capture error's hint, --cfg-options model.graph_capture.enabled=False, was refused by
    the demo's config: its tiny base model did not spell the key out."""
    from lcp.apis.config import load_config

    suggested = {"model.graph_capture.enabled": False, "model.start_as_pretrained": True}
    for config in sorted((REPO / "config" / "mmdet").glob("lcp_*.py")):
        cfg = load_config(str(config), suggested)
        assert cfg.model.graph_capture.enabled is False and cfg.model.start_as_pretrained is True, config


def _wrapped(error: Exception, *classes: str) -> Exception:
    """`error` re-raised as mmcv's build_from_cfg does, once per class (innermost first)."""
    for name in classes:
        try:
            raise error
        except Exception as e:
            try:
                raise type(e)(f"{name}: {e}")
            except Exception as outer:
                error = outer
    return error


def _failed_assert(tmp_path) -> AssertionError:
    """A bare assert's error from a module of its own (pytest would give a test file's a message)."""
    import importlib.util

    path = tmp_path / "resnet.py"
    path.write_text("def build(out_indices=(0, 9), num_stages=4):\n    assert max(out_indices) < num_stages\n")
    spec = importlib.util.spec_from_file_location("bare_assert_resnet", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        module.build()
    except AssertionError as exc:
        return exc
    raise RuntimeError("the assert passed")


def test_settings_error_text_unquotes_a_nested_key_error():
    from lcp.apis.config import settings_error_text

    error = _wrapped(KeyError("invalid depth 7 for resnet"), "LCPResNet", "LCPDetector")
    assert str(error).startswith("'LCPDetector: \"LCPResNet: ")  # mmcv's text: quoted again at each level
    assert settings_error_text(error) == "LCPDetector: LCPResNet: invalid depth 7 for resnet"


def test_settings_error_text_names_the_check_a_bare_assert_failed(tmp_path):
    from lcp.apis.config import settings_error_text

    error = _wrapped(_failed_assert(tmp_path), "LCPResNet", "LCPDetector")
    assert str(error) == "LCPDetector: LCPResNet: "
    text = settings_error_text(error)
    assert text.startswith("LCPDetector: LCPResNet: failed the check max(out_indices) < num_stages (resnet.py:2)")


def test_settings_error_text_keeps_a_plain_message():
    from lcp.apis.config import settings_error_text

    assert (
        settings_error_text(_wrapped(ValueError("Invalid learning rate: -0.02"), "SGD"))
        == "SGD: Invalid learning rate: -0.02"
    )
    assert settings_error_text(TypeError("cfg must be a dict")) == "cfg must be a dict"
