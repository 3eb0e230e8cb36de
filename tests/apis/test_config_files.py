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
