"""A real moto server process on 127.0.0.1, for tests, benchmarks and the demo.

`python -m moto.server -H 127.0.0.1 -p PORT` on a free port; `start_moto()` waits until it answers and
returns a handle whose `stop()` ends it; `running_moto()` is the context-manager form. `reset()` clears every
backend between tests (moto's own `/moto-api/reset`). Point boto3 at `server.endpoint_url`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class MotoUnavailable(RuntimeError):
    """moto[server] is not installed or the server did not come up."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoServer:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def is_running(self) -> bool:
        return self.process.poll() is None

    def reset(self) -> None:
        """Forget every resource in every backend."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


def start_moto(timeout: float = 30.0, log_path: Path | None = None) -> MotoServer:
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        raise MotoUnavailable(f"moto[server] is not installed: {exc}") from exc
    port = _free_port()
    env = {**os.environ, **FAKE_CREDENTIALS}
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL,
        env=env,
    )
    server = MotoServer(port, process, log_path, dict(FAKE_CREDENTIALS))
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise MotoUnavailable(f"moto server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{server.endpoint_url}/moto-api/", timeout=1) as resp:
                resp.read()
            return server
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            if time.monotonic() > deadline:
                server.stop()
                raise MotoUnavailable(
                    f"moto server did not answer on port {port} within {timeout:g}s"
                ) from None
            time.sleep(0.1)


@contextlib.contextmanager
def running_moto(log_path: Path | None = None) -> Iterator[MotoServer]:
    server = start_moto(log_path=log_path)
    try:
        yield server
    finally:
        server.stop()
