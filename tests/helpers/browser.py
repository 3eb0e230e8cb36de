"""A real headless Chromium (Debian's `chromium` package) driven over the DevTools protocol.

Playwright and its browser download are not available, so the tests talk to Chromium's own
DevTools endpoint through a minimal WebSocket client (stdlib only): open a page, run
JavaScript in it or in one of its frames, read the text a user would see.
Hosts without chromium install it with apt-get when the tests run as root; otherwise the
tests are skipped, unless LCP_REQUIRE_BROWSER=1, where that is a failure.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from helpers.debian import find_or_install

START_TIMEOUT_S = 60


def find_or_install_chromium() -> str:
    """The chromium executable; installed from Debian's packages when missing and running as root."""
    return find_or_install("chromium", "chromium", require="LCP_REQUIRE_BROWSER")


class WebSocket:
    """Just enough of RFC 6455 for DevTools: masked text frames out, text frames in."""

    def __init__(self, url: str, timeout: float):
        parts = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            assert chunk, "DevTools closed the connection during the handshake"
            response += chunk
        assert response.split(b"\r\n", 1)[0].split()[1] == b"101", response
        self.buffer = response.split(b"\r\n\r\n", 1)[1]

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            assert chunk, "DevTools closed the connection"
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def send(self, text: str) -> None:
        payload = text.encode()
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        elif len(payload) < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(payload))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(payload))
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload)))

    def receive(self) -> str:
        message = b""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(length)
            if first & 0x0F in (0x1, 0x0):
                message += payload
                if first & 0x80:
                    return message.decode()

    def close(self) -> None:
        self.sock.close()


class Chromium:
    """One headless chromium with one page; `evaluate` runs JavaScript in the page or a frame."""

    def __init__(self, executable: str, profile: Path):
        # Chromium's own org.chromium.Chromium.* scratch folders, which a killed chromium leaves
        # in TMPDIR; short, because a Unix socket is made in it
        self.scratch = tempfile.mkdtemp(prefix="lcp-chromium-")
        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--window-size=1400,1000",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "TMPDIR": self.scratch},
        )
        self.socket = None
        try:
            self.socket = self._connect(profile / "DevToolsActivePort")
        except BaseException:
            self.close()  # no fixture teardown for a browser that never came up
            raise
        self.next_id = 0

    def _connect(self, port_file: Path) -> WebSocket:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert self.process.poll() is None, f"chromium exited ({self.process.returncode})"
            assert time.monotonic() < deadline, f"chromium's DevTools not up within {START_TIMEOUT_S} s"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(target for target in json.load(response) if target["type"] == "page")
        return WebSocket(page["webSocketDebuggerUrl"], timeout=60)

    def call(self, method: str, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.receive())
            if message.get("id") == self.next_id:
                assert "error" not in message, f"{method}: {message['error']}"
                return message["result"]

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str, frame_id: str | None = None):
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        if frame_id is not None:  # a frame of another origin (a data: URL): its own isolated world
            params["contextId"] = self.call("Page.createIsolatedWorld", frameId=frame_id)["executionContextId"]
        result = self.call("Runtime.evaluate", **params)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def child_frames(self) -> list[str]:
        tree = self.call("Page.getFrameTree")["frameTree"]
        return [child["frame"]["id"] for child in tree.get("childFrames", [])]

    def wait_for_child_frame(self, timeout: float) -> str:
        """The id of the page's one child frame (an iframe), once there is one."""
        deadline = time.monotonic() + timeout
        while not (frames := self.child_frames()):
            assert time.monotonic() < deadline, f"no frame in the page within {timeout:g} s"
            time.sleep(0.25)
        assert len(frames) == 1, f"{len(frames)} frames in the page, expected one"
        return frames[0]

    def wait_for_text(self, texts: list[str], timeout: float, frame_id: str | None = None) -> str:
        """The page's (or frame's) visible text once it contains every one of `texts`."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.evaluate("document.body ? document.body.innerText : ''", frame_id) or ""
            if all(item in text for item in texts):
                return text
            assert time.monotonic() < deadline, (
                f"not in the page within {timeout:g} s: "
                f"{[item for item in texts if item not in text]}; page text:\n{text[:3000]}"
            )
            time.sleep(0.25)

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        try:
            os.killpg(self.process.pid, 9)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        shutil.rmtree(self.scratch, ignore_errors=True)
