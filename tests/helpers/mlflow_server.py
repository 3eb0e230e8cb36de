"""A real `mlflow server` on 127.0.0.1 for tests: fixtures `mlflow_server` and `mlflow_server_factory`.

The server keeps its runs in a sqlite database and its artifacts in a folder, so a killed
server restarted on the same port serves the same runs (what a team server does after a
crash). Started with --workers 1 and MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: ready in
seconds instead of ~20.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    def __init__(self, root: Path, port: int | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def backend_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    def start(self) -> MlflowServer:
        assert self.process is None, "already running"
        mlflow = Path(sys.executable).parent / "mlflow"
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        env.pop("MLFLOW_TRACKING_URI", None)
        self.starts += 1
        log = open(self.root / f"server-{self.starts}.log", "wb")
        # its own session: kill() reaches the uvicorn worker too
        self.process = subprocess.Popen(
            [
                str(mlflow),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--backend-store-uri",
                self.backend_uri,
                "--artifacts-destination",
                str(self.root / "artifacts"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.root,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({self.process.returncode}); see {log.name}")
            if self.healthy():
                return self
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"mlflow server not ready after {START_TIMEOUT_S} s; see {log.name}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def kill(self) -> None:
        """SIGKILL, as a crashing machine would: no clean shutdown."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """One server shared by the session's tests (use distinct scene names per test)."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    yield server
    server.stop()


@pytest.fixture
def mlflow_server_factory(tmp_path):
    """Servers a test may kill and restart; all stopped at the end of the test."""
    servers: list[MlflowServer] = []

    def make() -> MlflowServer:
        server = MlflowServer(tmp_path / f"mlflow-server-{len(servers)}")
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.kill()
