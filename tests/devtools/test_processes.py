"""devtools/processes.py with real processes: logs, readiness over HTTP and TCP, stopping a whole group."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from devtools import processes
from devtools.processes import WORKER_PORTS, WORKER_SLICE, NotReady, free_port, spawn, wait_http, wait_tcp

CHILD_THEN_WAIT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(child.pid, flush=True)
child.wait()
"""


def gone(pid: int) -> bool:
    """Not running any more (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_an_xdist_worker_takes_free_ports_from_its_own_slice_and_skips_taken_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw11")  # a worker no run of the suite has on this machine
    monkeypatch.setattr(processes, "_cursor", None)
    own = range(WORKER_PORTS + 11 * WORKER_SLICE, WORKER_PORTS + 12 * WORKER_SLICE)
    first, second = free_port(), free_port()
    assert first in own and second in own and first != second
    after = own.start + (second - own.start + 1) % WORKER_SLICE  # where the next pick starts looking
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", after))
        taken.listen()
        third = free_port()
    assert third in own and third not in (after, second)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", third))


def test_stop_ends_the_process_and_its_children(tmp_path: Path) -> None:
    log = tmp_path / "parent.log"
    process = spawn("parent", [sys.executable, "-c", CHILD_THEN_WAIT], log)
    deadline = time.monotonic() + 30
    while not log.read_text().strip():
        assert time.monotonic() < deadline and process.running(), process.log_tail()
        time.sleep(0.05)
    child = int(log.read_text().split()[0])
    process.stop()
    assert not process.running()
    deadline = time.monotonic() + 10
    while not gone(child):
        assert time.monotonic() < deadline, f"child {child} outlived its process group"
        time.sleep(0.05)


def test_wait_http_and_wait_tcp_return_once_the_server_answers(tmp_path: Path) -> None:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        str(port),
        "--directory",
        str(tmp_path),
    ]
    process = spawn("http.server", argv, tmp_path / "http.log")
    try:
        wait_tcp(process, port)
        wait_http(process, f"http://127.0.0.1:{port}/")
        assert process.running()
    finally:
        process.stop()


def test_a_process_that_exits_is_not_ready_and_its_log_says_why(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('no config file'); sys.exit(3)"]
    process = spawn("broken", argv, tmp_path / "broken.log")
    with pytest.raises(NotReady, match=r"(?s)broken exited with 3.*no config file"):
        wait_tcp(process, free_port())
