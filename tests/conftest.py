"""Shared fixtures: a real PostgreSQL server (Debian's 15), started once per test session.

When the server binaries are missing the tests that need them skip locally, but fail when
PGWARDEN_REQUIRE_SERVICES=1 (as in CI). PGWARDEN_PG_MAJOR=13..18 runs the session on that major version
instead, from the pinned relocatable builds of devtools.pgversions (`make test-versions`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import pgversions
from devtools.motoserver import MotoServer, MotoUnavailable, start_moto
from devtools.pgserver import PostgresServer, PostgresUnavailable, start_server

MONITOR_ROLE = "pgwarden_monitor"
MONITOR_PASSWORD = "monitor-secret-pw"
# Grafana community dashboard 9628, in the shared folder beside the repository (a clone may stand alone).
COMMUNITY_DASHBOARD = (
    Path(__file__).resolve().parents[2] / "shared" / "compat" / "grafana-dashboard-9628-rev8.json"
)


def services_required() -> bool:
    return os.environ.get("PGWARDEN_REQUIRE_SERVICES", "") not in ("", "0")


def missing_service(what: str) -> None:
    """Skip locally, fail under PGWARDEN_REQUIRE_SERVICES=1."""
    if services_required():
        pytest.fail(f"{what} is required (PGWARDEN_REQUIRE_SERVICES=1) but missing", pytrace=False)
    pytest.skip(f"{what} is not installed")


def moto_or_missing() -> MotoServer:
    """A started moto server; without moto, the test skips (or fails under PGWARDEN_REQUIRE_SERVICES=1)."""
    try:
        return start_moto()
    except MotoUnavailable as exc:
        missing_service(f"moto server ({exc})")
        raise AssertionError("unreachable") from exc


def community_dashboard(path: Path = COMMUNITY_DASHBOARD) -> dict[str, Any]:
    """The dashboard's JSON; the test skips when the file is absent. A fixture, not a service: this holds
    under PGWARDEN_REQUIRE_SERVICES=1 too (CI has the shared folder, so there the tests always run)."""
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared folder is not beside this clone)")
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def requested_major() -> int | None:
    """The major version PGWARDEN_PG_MAJOR asks for, or None for the default server."""
    value = os.environ.get("PGWARDEN_PG_MAJOR", "").strip()
    return int(value) if value else None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    major = requested_major()
    try:
        bindir = pgversions.install(major) if major is not None else None
        server = start_server(bindir=bindir)
    except (PostgresUnavailable, pgversions.VersionUnavailable) as exc:
        missing_service(f"PostgreSQL ({exc})")
        raise AssertionError("unreachable") from exc
    try:
        if major is not None:  # the matrix must never silently test another version
            running = int(server.execute("SHOW server_version_num")[0][0]) // 10000
            assert running == major, f"PGWARDEN_PG_MAJOR={major} but the server is PostgreSQL {running}"
        server.execute(f"CREATE ROLE {MONITOR_ROLE} LOGIN PASSWORD '{MONITOR_PASSWORD}' IN ROLE pg_monitor")
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(server.datadir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def monitor_dsn(pg_server: PostgresServer) -> str:
    """DSN of a non-superuser member of pg_monitor, as on RDS."""
    return pg_server.dsn("postgres", user=MONITOR_ROLE, password=MONITOR_PASSWORD)
