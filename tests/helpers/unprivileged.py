"""Run a command without root's right to read and write any file, so permission errors happen
as they would for a user: root (CI) runs it under `setpriv` with the file-access capabilities
dropped; anyone else runs it as it is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LCP_COMMAND = str(Path(sys.executable).parent / "lcp")
FILE_ACCESS_CAPS = "-dac_override,-dac_read_search,-fowner"


def unprivileged(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    if not shutil.which("setpriv"):
        pytest.fail("running as root without setpriv (util-linux): permission errors cannot be provoked")
    return ["setpriv", "--bounding-set", FILE_ACCESS_CAPS, "--inh-caps", FILE_ACCESS_CAPS, *argv]


def run_lcp(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`lcp ARGS` as an ordinary user would run it; its output captured as text."""
    return subprocess.run(unprivileged([LCP_COMMAND, *args]), capture_output=True, text=True, cwd=cwd, check=False)
