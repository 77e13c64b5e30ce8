"""The exporter as a process: `python -m exporter` run to completion, or serving on a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.processes import NotReady, free_port, spawn, wait_http

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without any DATA_SOURCE_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATA_SOURCE_")}
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """`python -m exporter ARGS` run to its end in `cwd` (the repository, or a copy of the package tree)."""
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        cwd=cwd,
        env=clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@dataclass
class Exporter:
    proc: subprocess.Popen[bytes]
    url: str
    stderr_path: Path

    def get(self, path: str) -> tuple[int, str, str]:
        """(status, content type, body) of a GET."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=20) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then the exit code; fails if it takes longer than STOP_TIMEOUT."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def running_exporter(tmp_path: Path, *args: str, env: dict[str, str], cwd: Path = REPO) -> Iterator[Exporter]:
    """The exporter on a free port, run in `cwd`, ready (its /healthz answers); stopped afterwards."""
    port = free_port()
    stderr_path = tmp_path / f"exporter-{port}.stderr"
    argv = [sys.executable, "-m", "exporter", "--web.listen-address", f"127.0.0.1:{port}", *args]
    process = spawn("exporter", argv, stderr_path, env, cwd)
    exporter = Exporter(process.popen, f"http://127.0.0.1:{port}", stderr_path)
    try:
        try:
            wait_http(process, f"{exporter.url}/healthz", READY_TIMEOUT)
        except NotReady as exc:
            pytest.fail(str(exc))
        yield exporter
    finally:
        process.stop()
