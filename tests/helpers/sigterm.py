"""A SIGTERM to pytest (CI's timeout, a scheduler's kill) ends the run as Ctrl-C does.

Without it pytest dies at once and no fixture's teardown runs: the MLflow servers, the SLURM
daemons and the chromium the tests started (each in its own session, so the signal does not
reach them) were left running, listening on their ports. Forked children of pytest keep the
default: the signal ends them as before.
"""

from __future__ import annotations

import os
import signal

_PYTEST_PID = os.getpid()


def _interrupt(signum, frame):
    if os.getpid() != _PYTEST_PID:  # a forked child (data loader, pool worker) inherited this handler
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    global _PYTEST_PID
    _PYTEST_PID = os.getpid()
    signal.signal(signal.SIGTERM, _interrupt)
