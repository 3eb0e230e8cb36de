"""`lcp env --check` compares every pinned package with what is installed and says when
mmcv's compiled ops cannot run on the GPU the machine has."""

import os
import subprocess
import sys
from pathlib import Path

import torch

from lcp.apis.environment import pinned_versions, toolchain_report


def test_every_pin_is_checked_not_only_the_main_packages(tmp_path):
    """matplotlib, setuptools, tqdm, cityscapesscripts and nvidia-ml-py were never compared."""
    fake = tmp_path / "site"
    (fake / "matplotlib-3.0.0.dist-info").mkdir(parents=True)
    (fake / "matplotlib-3.0.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: matplotlib\nVersion: 3.0.0\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}
    lcp_command = Path(sys.executable).parent / "lcp"
    result = subprocess.run([str(lcp_command), "env", "--check"], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert f"problem: matplotlib is 3.0.0, the project pins {pinned_versions()['matplotlib']}" in result.stderr
    rows, _ = toolchain_report()
    assert set(pinned_versions()) <= {row[0] for row in rows}


def test_a_visible_gpu_with_cpu_only_mmcv_ops_is_a_problem(monkeypatch):
    """Training then failed at its first RoIAlign with 'not compiled with GPU support'."""
    import mmcv.ops

    monkeypatch.setattr(mmcv.ops, "get_compiling_cuda_version", lambda: "not available")  # a CPU build
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "NVIDIA H200")
    _, problems = toolchain_report()
    assert any("a GPU is visible but mmcv-full's ops were built for the CPU alone" in p for p in problems), problems
