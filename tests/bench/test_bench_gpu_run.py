"""bench/gpu/run.sh, the one-command GPU measurement, in what a machine without a GPU can check:
its help, its refusal without a GPU (before it installs anything), its shell, and which mmcv-full
it picks for which machine."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from helpers.debian import find_or_install

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "gpu" / "run.sh"


def machine():
    spec = importlib.util.spec_from_file_location("bench_gpu_machine", REPO / "bench" / "gpu" / "machine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*args, **env):
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


def test_help_says_how_to_prepare_and_run_it():
    result = run("--help")
    assert result.returncode == 0
    assert "bash bench/gpu/run.sh --fetch" in result.stdout and "--wheels DIR" in result.stdout
    assert "--study SECONDS" in result.stdout and "--no-bench" in result.stdout
    assert "--study-seeds" in result.stdout
    assert "set -euo" not in result.stdout


def test_without_a_gpu_it_says_so_and_installs_nothing(tmp_path):
    result = run(
        "--out",
        str(tmp_path / "out"),
        PYTHON=sys.executable,
        CUDA_VISIBLE_DEVICES="",
        LCP_GPU_ENV=str(tmp_path / "env"),
    )
    assert result.returncode == 2
    assert result.stderr.startswith("bench/gpu: no CUDA GPU is visible to torch ")
    assert "CUDA_VISIBLE_DEVICES=''" in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "env").exists()


def test_a_python_without_torch_or_an_unknown_option_is_refused(tmp_path):
    result = run(PYTHON=str(tmp_path / "no-such-python"))
    assert result.returncode == 2 and "set PYTHON to the machine's python" in result.stderr
    result = run("--iters", "3")
    assert result.returncode == 2 and "unknown option --iters" in result.stderr


def test_the_prebuilt_mmcv_fits_only_the_machine_it_was_built_for():
    m = machine()
    code, sentence = m.verdict((3, 12), "2.11.0+cu130", "13.0", (9, 0))
    assert code == m.FITS and "prebuilt mmcv-full fits" in sentence
    code, sentence = m.verdict((3, 11), "2.14.1+cu130", "13.0", (8, 0))
    assert code == m.BUILD and "built from its sdist" in sentence
    assert "Python 3.11" in sentence and "torch 2.14.1" in sentence and "capability 8.0" in sentence
    assert m.verdict((3, 12), "2.11.0+cu126", "12.6", (9, 0))[0] == m.BUILD
    # newer on one axis is no fit either: its ops and ABI are built for exactly one machine
    assert m.verdict((3, 13), "2.11.0+cu130", "13.0", (9, 0))[0] == m.BUILD
    assert m.verdict((3, 12), "2.11.0+cu130", "13.0", (10, 0))[0] == m.BUILD
    assert m.verdict((3, 12), "2.12.0+cu130", "13.0", (9, 0))[0] == m.BUILD
    assert m.verdict((3, 12), "2.11.0+cpu", None, None)[0] == m.NO_GPU
    assert m.verdict((3, 12), None, None, None)[0] == m.NO_GPU


def test_the_script_is_shellcheck_clean():
    shellcheck = find_or_install("shellcheck", "shellcheck", require="LCP_REQUIRE_SHELLCHECK")
    result = subprocess.run([shellcheck, "-x", str(SCRIPT)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout


def test_the_studys_table_averages_only_seeds_every_method_finished():
    spec = importlib.util.spec_from_file_location("bench_gpu_study", REPO / "bench" / "gpu" / "study.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    collapsed = dict(mask_mean=0.005, mask_spatial_std=0.0001, collapsed=True)
    rows = [
        dict(seed=0, baseline=dict(ap=60.0), lcp=dict(ap=62.0, crux_health=collapsed)),  # a run failed
        dict(seed=1, baseline=dict(ap=66.0), lcp=dict(ap=65.0, crux_health=None)),
        dict(seed=2, baseline=dict(ap=68.0), lcp=dict(ap=70.0, crux_health=collapsed)),
    ]
    for row in rows[1:]:
        row["lcp_pretrained_start"] = dict(ap=row["baseline"]["ap"] + 3.0, crux_health=None)
    table = study.table(dict(pretrained=dict(ap=51.0), rows=rows))
    assert "pretrained detector: 51.00 AP" in table
    assert "seed 0: baseline 60.00, lcp 62.00\n    lcp: mask 0.005, spatial std 0.000 COLLAPSED" in table
    assert "over seeds [1, 2]:" in table
    assert "lcp                    67.50 ± 3.54   paired - baseline 0.50 ± 2.12" in table
    assert "lcp_pretrained_start   70.00 ± 1.41   paired - baseline 3.00 ± 0.00" in table


def test_the_gpu_checks_tell_a_capture_from_a_fallback_and_from_no_attempt():
    spec = importlib.util.spec_from_file_location("bench_gpu_checks", REPO / "bench" / "gpu" / "gpu_checks.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    captured = "2026-11-30 14:28:03,033 - mmdet - INFO - graph capture: LCPDetector's front captured for phase test"
    failed = (
        "2026-11-30 14:35:38,502 - mmdet - WARNING - capturing LCPDetector's front for ('crux_learner', (4, 3, 512, "
        "512)) failed: CUDA error: operation failed due to a previous error during capture; --cfg-options "
        "model.graph_capture.enabled=False skips capturing; LCPDetector's front runs eagerly from now on"
    )
    assert check.verdict(f"epoch 1\n{captured}\nepoch 2") == "captured"
    said = check.verdict(f"{captured}\n{failed}\n")
    assert said.startswith("FAILED, ran eagerly: capturing LCPDetector's front for ('crux_learner'")
    assert "operation failed due to a previous error during capture" in said
    assert check.verdict("Epoch [1][10/10]\n").startswith("no capture attempted")


def test_the_gpu_checks_compare_detections_box_by_box_and_count_by_count():
    import numpy as np

    spec = importlib.util.spec_from_file_location("bench_gpu_checks", REPO / "bench" / "gpu" / "gpu_checks.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    box = np.array([[1.0, 2.0, 30.0, 40.0, 0.9]], dtype=np.float32)
    image = [box, np.zeros((0, 5), np.float32)]  # per class
    assert check.largest_difference([image, image], [image, image]) == "largest difference 0"
    moved = [box + np.float32(0.25), image[1]]
    assert check.largest_difference([image], [moved]) == "largest difference 0.25"
    extra = [np.concatenate([box, box]), image[1]]
    assert check.largest_difference([image], [extra]).endswith("DETECTION COUNTS DIFFER")
