"""Child processes of the dev tools, the benchmarks and the tests: a free port, start, wait, stop.

`spawn()` starts a command in its own session (so its whole process group can be signalled), with its output
in a log file, and returns a `Process`; `wait_http()` / `wait_tcp()` wait until it answers on 127.0.0.1.
`Process.stop()` sends SIGTERM to the group, then SIGKILL after a grace period. Every process still running
when the interpreter exits is stopped too (atexit), so a failed run leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STOP_GRACE = 10.0


class NotReady(RuntimeError):
    """A process exited, or did not answer in time."""


# Under pytest-xdist every worker takes its ports from a slice of its own below the kernel's ephemeral range
# (32768 and up, where bind(0) and outgoing connections take theirs): a port one worker picked and has not bound
# yet is never another worker's pick. Worker gwN's slice starts at WORKER_PORTS + N * WORKER_SLICE.
WORKER_PORTS = 20000
WORKER_SLICE = 1000
WORKER_SLICES = 12  # up to 31999
_cursor: int | None = None


def _worker_index() -> int | None:
    """N for the pytest-xdist worker gwN (also in the processes it starts), else None."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = worker.removeprefix("gw")
    return int(index) if worker.startswith("gw") and index.isdigit() else None


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (in this pytest-xdist worker's slice)."""
    global _cursor
    worker = _worker_index()
    if worker is not None and worker < WORKER_SLICES:
        base = WORKER_PORTS + worker * WORKER_SLICE
        if _cursor is None:  # a process the worker started begins elsewhere in the slice than the worker
            _cursor = os.getpid() % WORKER_SLICE
        for _ in range(WORKER_SLICE):
            port = base + _cursor
            _cursor = (_cursor + 1) % WORKER_SLICE  # never the same port twice in a row
            if _bindable(port):
                return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    """A started command; its pid is also its process group and session id."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path | None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def check_running(self) -> None:
        if not self.running():
            raise NotReady(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM the process group, SIGKILL it when it has not exited after `grace` seconds."""
        if self.running():
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(grace)
        with contextlib.suppress(ValueError):
            _running.remove(self)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def log_tail(self, lines: int = 30) -> str:
        if self.log is None:
            return ""
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


_running: list[Process] = []


def stop_all() -> None:
    """Stop every process `spawn()` started that is still running, newest first."""
    for process in reversed(list(_running)):
        process.stop()


atexit.register(stop_all)


def spawn(
    name: str,
    argv: Sequence[str],
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
) -> Process:
    """Start `argv` in a new session, stdin closed, stdout and stderr written to `log` (or discarded)."""
    with open(log if log else os.devnull, "wb") as out:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    process = Process(name, popen, log)
    _running.append(process)
    return process


def _wait(process: Process, what: str, answers: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        process.check_running()
        if answers():
            return
        if time.monotonic() > deadline:
            process.stop()
            raise NotReady(f"{process.name} did not answer {what} within {timeout:g}s:\n{process.log_tail()}")
        time.sleep(0.1)


def wait_http(process: Process, url: str, timeout: float = 30.0) -> None:
    """Wait until GET `url` succeeds; stop the process and raise `NotReady` when it exits or times out."""

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                resp.read()
        except OSError:
            return False
        return True

    _wait(process, url, answers, timeout)


def wait_tcp(process: Process, port: int, timeout: float = 30.0) -> None:
    """Wait until 127.0.0.1:`port` accepts connections (same failure handling as `wait_http`)."""

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    _wait(process, f"on port {port}", answers, timeout)
