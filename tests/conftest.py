import logging
import os
import sys

import pytest

# tests/ is on sys.path (pytest's rootdir-relative imports; tests is not a package), so the
# shared modules are imported as helpers.<name>; two provide session fixtures, sigterm a clean stop.
pytest_plugins = ["helpers.slurm_cluster", "helpers.mlflow_server", "helpers.sigterm"]


@pytest.fixture(autouse=True)
def fresh_mmcv_loggers():
    """mmcv binds a logger's StreamHandler to the sys.stderr of the moment the logger is first
    made; under pytest's capture that stream is closed when the test ends, and a later test's
    log lines would fail to write there. Every test starts with fresh loggers instead."""
    yield
    mmcv_logging = sys.modules.get("mmcv.utils.logging")
    if mmcv_logging is None:
        return
    for name in list(mmcv_logging.logger_initialized):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        del mmcv_logging.logger_initialized[name]


@pytest.fixture(autouse=True)
def process_environment_restored():
    """Commands run in-process set variables for the processes they start (`lcp train` sets
    LCP_SEED for its MLflow tag, LOCAL_RANK for mmcv); a later test must not inherit them."""
    saved = dict(os.environ)
    yield
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    os.environ.update(saved)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder holding `demo/`, a 3-image demo scene, for the tests of the lcp commands."""
    from lcp.cli import main as lcp

    root = tmp_path_factory.mktemp("tools")
    assert lcp(["data", "demo", "--out", str(root / "demo"), "--num-images", "3", "--no-progress"]) == 0
    return root
