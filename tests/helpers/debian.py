"""Tools from Debian's packages that some tests need (chromium, shellcheck): found on PATH, or
installed with apt-get when the tests run as root; otherwise the test is skipped, or fails
where the environment variable `require` is 1 (CI sets it, see .ci/run)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def skip_or_fail(reason: str, require: str) -> None:
    if os.environ.get(require) == "1":
        pytest.fail(f"{require}=1 but {reason}")
    pytest.skip(reason)


def find_or_install(executable: str, package: str, require: str) -> str:
    """The path of `executable`, installing Debian's `package` first when it is missing."""
    found = shutil.which(executable)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        skip_or_fail(f"{executable} is not installed and cannot be installed here (needs root and apt-get)", require)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    result = subprocess.run(install, check=False, capture_output=True, text=True, env=env, timeout=900)
    if result.returncode != 0:  # package lists missing or stale
        subprocess.run(["apt-get", "update"], check=False, capture_output=True, text=True, env=env, timeout=600)
        result = subprocess.run(install, check=False, capture_output=True, text=True, env=env, timeout=900)
    if result.returncode != 0 or not shutil.which(executable):
        skip_or_fail(f"apt-get install {package} failed: {result.stderr.strip().splitlines()[-1:]}", require)
    return shutil.which(executable)
