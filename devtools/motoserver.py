"""A real moto server process on 127.0.0.1, for tests, benchmarks and the demo.

`python -m moto.server -H 127.0.0.1 -p PORT` on a free port; `start_moto()` waits until it answers and
returns a handle whose `stop()` ends it; `running_moto()` is the context-manager form. `reset()` clears every
backend between tests (moto's own `/moto-api/reset`). Point boto3 at `server.endpoint_url`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from devtools.processes import NotReady, free_port, spawn, wait_http
from devtools.services import Service

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class MotoUnavailable(RuntimeError):
    """moto[server] is not installed or the server did not come up."""


@dataclass
class MotoServer(Service):
    """The moto server; boto3 clients take `endpoint_url`, the environment `env` (fake credentials)."""

    env: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint_url(self) -> str:
        return self.url

    def is_running(self) -> bool:
        return self.process.running()

    def reset(self) -> None:
        """Forget every resource in every backend."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()


def start_moto(timeout: float = 30.0, log_path: Path | None = None) -> MotoServer:
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        raise MotoUnavailable(f"moto[server] is not installed: {exc}") from exc
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = spawn("moto server", argv, log_path, {**os.environ, **FAKE_CREDENTIALS})
    server = MotoServer("moto server", process, port, "/moto-api/", dict(FAKE_CREDENTIALS))
    try:
        wait_http(process, f"{server.endpoint_url}/moto-api/", timeout)
    except NotReady as exc:
        raise MotoUnavailable(str(exc)) from None
    return server


@contextlib.contextmanager
def running_moto(log_path: Path | None = None) -> Iterator[MotoServer]:
    server = start_moto(log_path=log_path)
    try:
        yield server
    finally:
        server.stop()
