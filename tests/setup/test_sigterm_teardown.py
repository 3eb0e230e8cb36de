"""A SIGTERM to pytest runs the fixtures' teardowns (helpers.sigterm), which stop the servers
and daemons the tests start, and ends the run; without it they were left running."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

SUITE = """
import time

import pytest

from lcp.cli import main as lcp


@pytest.fixture
def server():
    yield
    with open("down", "w"):
        pass


def test_long(server):
    with open("up", "w"):
        pass
    if {in_lcp!r}:  # a long lcp command run in-process, as many tests do
        lcp(["data", "demo", "--out", "demo", "--num-images", "100000", "--no-progress"])
    else:
        time.sleep(120)


def test_after():
    with open("after", "w"):
        pass
"""


def temporaries(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if name.startswith(".")]


def run_and_terminate(tmp_path: Path, plugins: list[str], in_lcp: bool = False) -> tuple[int, set[str]]:
    """(pytest's exit status, the marks its tests and fixtures left) for a run sent SIGTERM mid-test."""
    (tmp_path / "test_suite.py").write_text(SUITE.format(in_lcp=in_lcp))
    options = [option for plugin in plugins for option in ("-p", plugin)]
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, "test_suite.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    # in lcp: once the command has started writing (its temporary folder beside `demo`)
    while not (tmp_path / "up").exists() or (in_lcp and not temporaries(tmp_path)):
        assert process.poll() is None and time.monotonic() < deadline, "the inner pytest did not start its test"
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    status = process.wait(timeout=60)
    return status, {mark for mark in ("down", "after") if (tmp_path / mark).exists()}


def test_sigterm_runs_the_teardowns_and_ends_the_run(tmp_path):
    assert run_and_terminate(tmp_path, ["helpers.sigterm"]) == (2, {"down"})  # 2: pytest's "interrupted"


def test_sigterm_during_an_in_process_lcp_command_ends_the_run(tmp_path):
    """lcp's own handler cleans up, and returned 143: the test failed and the run went on."""
    assert run_and_terminate(tmp_path, ["helpers.sigterm"], in_lcp=True) == (2, {"down"})
    assert not temporaries(tmp_path)  # removed by the command


def test_without_the_plugin_sigterm_skips_them(tmp_path):
    assert run_and_terminate(tmp_path, []) == (-signal.SIGTERM, set())
