"""SIGTERM to the real responder process while an action runs: the first drains (the action finishes, the
process exits 0), a second stops at once with the running action journaled `interrupted`; never a traceback.

The process is `tests.responder.adversarial.slow_responder`: the responder's own `main` with a `nap` action
that sleeps, so an action is reliably running when the signals arrive.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.processes import ROOT, free_port
from tests.support.responder import AUTH, config_file
from tests.support.webhook import alert, payload

EXIT_WAIT = 30.0  # a bound for waiting, never asserted on


def start(folder: Path, seconds: float, shutdown_timeout: float) -> tuple[subprocess.Popen[bytes], str]:
    nap = {"name": "nap", "match": {"alertname": "Nap"}, "action": "nap", "params": {"seconds": seconds}}
    config = config_file(folder, shutdown_timeout=f"{shutdown_timeout}s", playbooks=[nap])
    port = free_port()
    argv = [
        *(sys.executable, "-m", "tests.responder.adversarial.slow_responder", "--config", str(config)),
        *("--web.listen-address", f"127.0.0.1:{port}"),
    ]
    stderr = (folder / "stderr.log").open("wb")
    process = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, (folder / "stderr.log").read_text()
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return process, base
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, (folder / "stderr.log").read_text()
        time.sleep(0.1)


def running_action(base: str) -> int:
    resp = requests.post(f"{base}/webhook", json=payload(alert("Nap")), headers=AUTH, timeout=10)
    assert resp.status_code == 202, resp.text
    (decision,) = resp.json()["decisions"]
    deadline = time.monotonic() + 20
    while True:
        rows = requests.get(f"{base}/actions", headers=AUTH, timeout=10).json()["actions"]
        row = next(r for r in rows if r["id"] == decision["id"])
        if row["state"] == "running":
            return int(decision["id"])
        assert time.monotonic() < deadline, row
        time.sleep(0.05)


def journal_row(folder: Path, action_id: int) -> dict[str, Any]:
    with closing(sqlite3.connect(folder / "journal.db")) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM pgwarden_actions WHERE id = ?", (action_id,)).fetchone()
    return dict(row)


def wait_exit(process: subprocess.Popen[bytes], folder: Path) -> tuple[int, float, str]:
    began = time.monotonic()
    try:
        code = process.wait(EXIT_WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        pytest.fail(f"the responder did not exit:\n{(folder / 'stderr.log').read_text()}")
    return code, time.monotonic() - began, (folder / "stderr.log").read_text()


@pytest.fixture
def stopped_at_exit() -> Any:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes.append
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_one_sigterm_drains_the_running_action_and_exits_0(tmp_path: Path, stopped_at_exit: Any) -> None:
    process, base = start(tmp_path, seconds=2, shutdown_timeout=30)
    stopped_at_exit(process)
    action_id = running_action(base)
    process.send_signal(signal.SIGTERM)
    code, _, stderr = wait_exit(process, tmp_path)
    assert code == 0, stderr
    assert "Traceback" not in stderr and "Event loop stopped" not in stderr, stderr
    row = journal_row(tmp_path, action_id)
    assert (row["state"], row["outcome"]) == ("done", "succeeded"), row


def test_a_second_sigterm_stops_at_once_and_journals_the_action_interrupted(
    tmp_path: Path, stopped_at_exit: Any
) -> None:
    process, base = start(tmp_path, seconds=600, shutdown_timeout=600)
    stopped_at_exit(process)
    action_id = running_action(base)
    process.send_signal(signal.SIGTERM)
    time.sleep(1.0)  # the first is draining: it waits for the action (up to shutdown_timeout)
    assert process.poll() is None, (tmp_path / "stderr.log").read_text()
    process.send_signal(signal.SIGTERM)
    code, took, stderr = wait_exit(process, tmp_path)
    assert took < 15, f"took {took:.1f}s to stop after the second SIGTERM"
    assert code == 1, stderr
    assert "Traceback" not in stderr and "Event loop stopped" not in stderr, stderr
    row = journal_row(tmp_path, action_id)
    assert (row["state"], row["outcome"]) == ("done", "interrupted"), row
