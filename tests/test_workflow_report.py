"""`lcp report metrics|robustness`: the per-scene tables and plots from eval files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_eval(path: Path, ap: float, classwise: dict, **extra) -> Path:
    metrics = {"bbox_mAP": ap, "bbox_mAP_50": ap + 0.2, "bbox_mAP_75": ap - 0.05,
               "bbox_mAP_s": None, "bbox_mAP_m": ap, "bbox_mAP_l": ap, "classwise": classwise,
               "num_images": 10, **extra}
    path.write_text(json.dumps(metrics))
    return path


def lcp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lcp.cli", *args], capture_output=True, text=True, cwd=REPO)


def test_metrics_tables_and_plot(tmp_path):
    baseline = write_eval(tmp_path / "b.json", 0.30, {"car": 0.25, "person": 0.35, "bus": None})
    method = write_eval(tmp_path / "l.json", 0.34, {"car": 0.31, "person": 0.36, "bus": None})
    out = tmp_path / "report"
    result = lcp("report", "metrics", "--title", "fog", "--eval", f"baseline={baseline}", "--eval", f"lcp={method}",
                 "--csv", str(out / "metrics.csv"), "--markdown", str(out / "summary.md"),
                 "--plot", str(out / "classwise.png"))
    assert result.returncode == 0, result.stderr

    rows = {row["method"]: row for row in csv.DictReader((out / "metrics.csv").open())}
    assert list(rows) == ["baseline", "lcp"]
    assert float(rows["lcp"]["AP"]) == pytest.approx(34.0)
    assert float(rows["baseline"]["AP50"]) == pytest.approx(50.0)
    assert float(rows["lcp"]["AP[car]"]) == pytest.approx(31.0)
    assert rows["baseline"]["AP[bus]"] == ""  # no ground truth: empty, not 0

    summary = (out / "summary.md").read_text()
    assert "| baseline | 30.0 | 50.0 | 25.0 |" in summary
    assert "| LCP - baseline | 4.0 | 4.0 | 4.0 |" in summary
    assert "| car | 25.0 | 31.0 |" in summary and "| bus | - | - |" in summary
    assert (out / "classwise.png").read_bytes()[:8] == PNG_SIGNATURE
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_robustness_table_sorted_by_severity(tmp_path):
    evals = []
    for method, aps in (("lcp", (0.3, 0.2)), ("baseline", (0.25, 0.1))):
        for beta, ap in zip(("0.05", "0.01"), aps):
            path = write_eval(tmp_path / f"{method}_{beta}.json", ap, {"car": ap})
            evals += ["--eval", f"{method}@beta_{beta}={path}"]
    result = lcp("report", "robustness", *evals, "--csv", str(tmp_path / "r.csv"), "--plot", str(tmp_path / "r.png"))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [(r["method"], r["parameter"], float(r["value"]), float(r["AP"])) for r in rows] == [
        ("baseline", "beta", 0.01, 10.0), ("baseline", "beta", 0.05, 25.0),
        ("lcp", "beta", 0.01, 20.0), ("lcp", "beta", 0.05, 30.0)]
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize("content, message", [
    ({"bbox_mAP": 0.3}, "missing bbox_mAP_50, bbox_mAP_75, classwise"),
    ({"bbox_mAP": 30.0, "bbox_mAP_50": 0.5, "bbox_mAP_75": 0.2, "classwise": {}}, "bbox_mAP = 30.0 is not an AP"),
])
def test_bad_eval_file_is_one_clear_line(tmp_path, content, message):
    bad = tmp_path / "eval.json"
    bad.write_text(json.dumps(content))
    result = lcp("report", "metrics", "--eval", f"lcp={bad}", "--csv", str(tmp_path / "m.csv"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"lcp report: error: {bad}: ") and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m.csv").exists()


def test_bad_sweep_name(tmp_path):
    path = write_eval(tmp_path / "e.json", 0.3, {"car": 0.3})
    result = lcp("report", "robustness", "--eval", f"lcp@strong={path}", "--csv", str(tmp_path / "r.csv"))
    assert result.returncode == 2
    assert "lcp@strong: expected METHOD@PARAMETER_VALUE" in result.stderr
