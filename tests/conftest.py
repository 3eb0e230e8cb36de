# tests/ is on sys.path (pytest's rootdir-relative imports; tests is not a package), so
# fixture modules here are plain top-level names.
pytest_plugins = ["slurm_cluster", "mlflow_server"]

import logging
import sys

import pytest


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
