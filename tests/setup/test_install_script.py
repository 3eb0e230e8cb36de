"""scripts/install.sh stops with one clear line, before installing anything, when the
interpreter is too old or the compiler needed for mmcv-full's ops is missing."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "scripts" / "install.sh"


def run_install(tmp_path: Path, env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "LCP_VENV": str(tmp_path / "venv"),
        "LCP_WHEEL_CACHE": str(tmp_path / "empty-cache"),
        **env_overrides,
    }
    return subprocess.run(["bash", str(INSTALL)], env=env, capture_output=True, text=True, timeout=60)


def test_too_old_python_is_named(tmp_path):
    old_python = tmp_path / "python3.10"
    old_python.write_text("#!/bin/sh\necho 3.10.14\n")
    old_python.chmod(0o755)
    result = run_install(tmp_path, {"LCP_PYTHON": str(old_python)})
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"install: error: Python >= 3.11 is required, '{old_python}' is 3.10.14; set LCP_PYTHON to a newer interpreter"
    )
    assert not (tmp_path / "venv").exists()


def test_missing_interpreter_is_named(tmp_path):
    result = run_install(tmp_path, {"LCP_PYTHON": str(tmp_path / "no-such-python")})
    assert result.returncode != 0
    assert "no-such-python' not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_compiler_stops_before_any_download(tmp_path):
    # A PATH with every tool of the system except the C/C++ compilers.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(folder).iterdir():
            name = tool.name
            if name in {"gcc", "g++", "cc", "c++"} or name.startswith(("gcc-", "g++-", "x86_64-linux-gnu-g")):
                continue
            if not (bin_dir / name).exists():
                (bin_dir / name).symlink_to(tool)
    result = run_install(tmp_path, {"PATH": str(bin_dir), "LCP_PYTHON": sys.executable})
    assert result.returncode != 0
    assert "gcc/g++ not found" in result.stderr
    assert "build-essential" in result.stderr
    assert not (tmp_path / "venv").exists()
