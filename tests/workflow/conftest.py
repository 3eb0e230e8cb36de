import os
import sys
from pathlib import Path

import pytest

from helpers.workflow import REPO, failure_details, prepare_workdir, snakemake, tiny_demo_config


@pytest.fixture(scope="session")
def demo_dag(tmp_path_factory):
    """A finished run of the tiny demo DAG, made once for the session (it takes minutes): the
    browser checks read it, then test_workflow_e2e.py reruns parts of it in order (the hook
    below keeps that order)."""
    workdir = tmp_path_factory.mktemp("workflow-demo")
    prepare_workdir(workdir, tiny_demo_config(workdir))
    # as from a shell without the venv activated: the workflow finds its own lcp
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    result = snakemake(workdir, "--profile", str(REPO / "profiles" / "local"), timeout=900, env={"PATH": path})
    assert result.returncode == 0, failure_details(workdir, result)
    (workdir / "first-run.out").write_text(result.stdout)
    return workdir


def pytest_collection_modifyitems(items):
    """The browser checks read demo_dag as first made and test_workflow_e2e.py changes it: the
    browser's run first, whatever order the files were given in."""
    browser = [item for item in items if item.path.name == "test_browser.py"]
    e2e = next((n for n, item in enumerate(items) if item.path.name == "test_workflow_e2e.py"), None)
    if browser and e2e is not None and items.index(browser[0]) > e2e:
        rest = [item for item in items if item not in browser]
        items[:] = rest[:e2e] + browser + rest[e2e:]
