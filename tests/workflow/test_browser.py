"""What a user sees in a browser: `mlflow server`'s run table and results/report.html's AP table.

One real run of the tiny demo DAG (conftest.py's, shared with test_workflow_e2e.py) gives both: its MLflow store,
served by a real `mlflow server` on 127.0.0.1, and `snakemake --report report.html`. A real
headless Chromium (Debian's package, installed when missing and root; tests/helpers/browser.py)
loads them and clicks through them as a user would; the assertions read the page's text.
"""

from __future__ import annotations

import csv

import pytest

from helpers.browser import Chromium, find_or_install_chromium
from helpers.mlflow_server import MlflowServer
from helpers.workflow import snakemake

pytestmark = pytest.mark.slow

PAGE_TIMEOUT_S = 120
# Click the last link (or list entry) whose own text is exactly `text`.
CLICK_TEXT = """(text => {
  const hit = [...document.querySelectorAll('a, button, li, span')].filter(el => el.textContent.trim() === text).pop();
  if (!hit) return false;
  (hit.closest('a, button') || hit).click();
  return true;
})"""
# Click the `index`-th link of the table row that contains `text` (0: view, 1: information).
CLICK_ROW = """((text, index) => {
  const row = [...document.querySelectorAll('tr')].find(tr => tr.textContent.includes(text));
  if (!row) return false;
  row.querySelectorAll('a')[index].click();
  return true;
})"""

# Click the icon-only button beside a run's name in MLflow's run table (a parent run's expander).
CLICK_EXPANDER = """(name => {
  const button = [...document.querySelectorAll('button')].find(
    b => !b.textContent.trim() && (b.closest('[role=gridcell]') || b).textContent.includes(name));
  if (!button) return false;
  button.click();
  return true;
})"""


@pytest.fixture(scope="module")
def chromium_executable():
    return find_or_install_chromium()


@pytest.fixture(scope="module")
def demo(demo_dag, chromium_executable):
    """The finished tiny demo DAG (conftest.py) with its MLflow store (mlflow.db) and report.html."""
    result = snakemake(demo_dag, "--report", "report.html", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    return demo_dag


@pytest.fixture
def browser(chromium_executable, tmp_path):
    chromium = Chromium(chromium_executable, tmp_path / "chromium-profile")
    yield chromium
    chromium.close()


def click(browser: Chromium, text: str, then_visible: list[str]) -> str:
    assert browser.evaluate(f"{CLICK_TEXT}({text!r})"), f"nothing to click named {text!r}"
    return browser.wait_for_text(then_visible, PAGE_TIMEOUT_S)


def test_mlflow_ui_shows_the_workflow_runs(demo, browser):
    from mlflow.tracking import MlflowClient

    server = MlflowServer(demo).start()  # its store is the DAG's: demo/mlflow.db
    try:
        client = MlflowClient(server.uri)
        experiment = client.get_experiment_by_name("lcp/demo")
        runs = client.search_runs([experiment.experiment_id], max_results=100)
        parent = next(run for run in runs if run.data.tags.get("lcp.role") == "invocation")
        browser.open(f"{server.uri}/#/experiments/{experiment.experiment_id}/runs")
        text = browser.wait_for_text(["Run Name", parent.info.run_name, f"{len(runs)} matching runs"], PAGE_TIMEOUT_S)
        assert "lcp/demo" in text
        # the jobs' runs sit under the invocation's: its expander (the icon beside its name) lists them
        assert browser.evaluate(f"{CLICK_EXPANDER}({parent.info.run_name!r})"), "the invocation's run has no expander"
        browser.wait_for_text(["demo/evaluate/baseline", "demo/evaluate/lcp", "demo/train/lcp"], PAGE_TIMEOUT_S)
    finally:
        server.stop()


def test_report_shows_the_ap_table_labelled_entries_and_no_plumbing(demo, browser):
    browser.open((demo / "report.html").as_uri())
    browser.wait_for_text(["Results"], PAGE_TIMEOUT_S)
    click(browser, "Results", ["demo"])
    subcategories = click(browser, "demo", ["Detection", "Data", "Robustness", "Crux learner", "Sample detections"])
    assert "Sample detections" in subcategories
    entries = click(
        browser,
        "Detection",
        ["AP summary (tables, sample detections)", "class-wise AP (plot)", "metrics table (csv, downloads)"],
    )
    assert "summary.html" not in entries and "results/demo" not in entries  # labels, not paths

    assert browser.evaluate(f"{CLICK_ROW}('AP summary', 0)")
    frame = browser.wait_for_child_frame(PAGE_TIMEOUT_S)  # the summary shown in the page, not downloaded
    rows = {row["method"]: row for row in csv.DictReader((demo / "results/demo/report/metrics.csv").open())}
    expected = [
        "\t".join([method] + [f"{float(rows[method][key]):.1f}" for key in ("AP", "AP50", "AP75")])
        for method in ("baseline", "lcp")
    ]
    summary = browser.wait_for_text(
        ["method\tAP\tAP50\tAP75", *expected, "Sample detections"], PAGE_TIMEOUT_S, frame_id=frame
    )
    assert "LCP - baseline" in summary
    assert browser.evaluate("document.images.length", frame) == 6  # 3 test images x 2 methods

    # the entry's information: its description and job parameters, without the MLflow plumbing
    assert browser.evaluate(f"{CLICK_ROW}('AP summary', 1)")
    info = browser.wait_for_text(["JOB PARAMETERS", "scene=demo"], PAGE_TIMEOUT_S)
    assert "LCP_SNAKEMAKE" not in info and "log-artifacts" not in info

    # sample detections: one entry per test image, a toggle between the methods
    click(browser, "demo", ["Sample detections"])
    click(browser, "Sample detections", ["test image 1", "test image 3", "METHOD", "baseline", "lcp"])
