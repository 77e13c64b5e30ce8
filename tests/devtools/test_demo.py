"""`make demo` as a user runs it: DEMO_ONCE=1 plays the runbook through the whole loop once and exits 0 only if
every step happened (query cancelled, storage grown 100 → 125 GiB, instance scaled one class up)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devtools.pgserver import PostgresUnavailable, find_bindir
from tests.conftest import missing_service

ROOT = Path(__file__).resolve().parents[2]


def test_demo_once_shows_live_metrics() -> None:
    try:
        find_bindir()
    except PostgresUnavailable as exc:
        missing_service(f"PostgreSQL ({exc})")
    result = subprocess.run(
        [sys.executable, "-m", "devtools.demo"],
        cwd=ROOT,
        env=dict(os.environ, DEMO_ONCE="1"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "demo: every step happened" in out and "stopped" in out
    for step in ("query started", "alert PostgresLongRunningQuery firing", "backend cancelled by the responder",
                 "storage grown 100 → 125 GiB", "instance scaled db.t3.medium → db.r6g.large"):  # fmt: skip
        assert step in out, step
    assert "/ui (sign in with demo-approver-token-change-me)" in out  # the console and an approver's token
    assert "demo-monitor-pw" not in out + result.stderr  # the DSNs' passwords never show
