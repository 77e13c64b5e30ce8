"""`make demo` as a user runs it: DEMO_ONCE=1 plays a short round and exits 0 only if the metrics were live."""

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
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo: OK" in result.stdout
    assert "pg_up=1" in result.stdout and "stopped" in result.stdout
    assert "demo-monitor-pw" not in result.stdout + result.stderr  # the DSN's password never shows
