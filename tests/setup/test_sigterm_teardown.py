"""A SIGTERM to pytest runs the fixtures' teardowns (helpers.sigterm), which stop the servers
and daemons the tests start; without it they were left running."""

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


@pytest.fixture
def server(tmp_path_factory):
    with open({up!r}, "w"):
        pass
    yield
    with open({down!r}, "w"):
        pass


def test_long(server):
    time.sleep(120)
"""


def run_and_terminate(tmp_path: Path, plugins: list[str]) -> tuple[int, bool]:
    """(pytest's exit status, whether the fixture's teardown ran) for a run sent SIGTERM mid-test."""
    up, down = tmp_path / "up", tmp_path / "down"
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_suite.py").write_text(SUITE.format(up=str(up), down=str(down)))
    options = [option for plugin in plugins for option in ("-p", plugin)]
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, str(suite)],
        cwd=suite,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not up.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the inner pytest did not start its test"
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60), down.exists()


def test_sigterm_runs_the_teardowns(tmp_path):
    status, torn_down = run_and_terminate(tmp_path, ["helpers.sigterm"])
    assert torn_down and status == 2  # pytest's "interrupted"


def test_without_the_plugin_sigterm_skips_them(tmp_path):
    status, torn_down = run_and_terminate(tmp_path, [])
    assert not torn_down and status == -signal.SIGTERM
