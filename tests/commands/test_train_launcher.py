"""`lcp train --gpus N` runs a process launcher (torchrun, srun) whose training processes live
in their own sessions: stopping lcp must stop them, through the launcher."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# A launcher as torchrun is: its worker in a session of its own, stopped when the launcher gets SIGTERM.
LAUNCHER = """
import signal, subprocess, sys, time
worker = subprocess.Popen(["sleep", "120"], start_new_session=True)
open(sys.argv[1], "w").write(str(worker.pid))
def stop(*_):
    worker.terminate(); worker.wait(); sys.exit(143)
signal.signal(signal.SIGTERM, stop)
while True:
    time.sleep(0.1)
"""

LCP_SIDE = """
import sys
from lcp.cli import main
import lcp.apis.distributed as distributed
import lcp.commands.train as train
train.checked_training_config = lambda request: (None, sys.argv[2])  # no config to read
distributed.process_launch_command = lambda gpus, argv, **_: [sys.executable, "-c", sys.argv[3], sys.argv[1]]
sys.exit(main(["train", "unused.py", "--gpus", "2", "--work-dir", sys.argv[2]]))
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_sigterm_to_lcp_train_stops_the_training_processes_of_its_launcher(tmp_path):
    """subprocess.run SIGKILLed torchrun, whose workers trained on with no lock on the work dir."""
    pid_file = tmp_path / "worker.pid"
    lcp = subprocess.Popen(
        [sys.executable, "-c", LCP_SIDE, str(pid_file), str(tmp_path / "work"), LAUNCHER],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    worker = int(pid_file.read_text())
    assert alive(worker)
    lcp.send_signal(signal.SIGTERM)
    _, err = lcp.communicate(timeout=60)
    assert lcp.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == "lcp train: terminated (SIGTERM); nothing unfinished was published"
    assert not alive(worker)
