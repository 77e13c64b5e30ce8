"""Shared fixtures: a real PostgreSQL 15 server, started once per test session.

When the server binaries are missing the tests that need them skip locally, but fail when
PGWARDEN_REQUIRE_SERVICES=1 (as in CI).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from devtools.pgserver import PostgresServer, PostgresUnavailable, start_server

MONITOR_ROLE = "pgwarden_monitor"
MONITOR_PASSWORD = "monitor-secret-pw"


def services_required() -> bool:
    return os.environ.get("PGWARDEN_REQUIRE_SERVICES", "") not in ("", "0")


def missing_service(what: str) -> None:
    """Skip locally, fail under PGWARDEN_REQUIRE_SERVICES=1."""
    if services_required():
        pytest.fail(f"{what} is required (PGWARDEN_REQUIRE_SERVICES=1) but missing", pytrace=False)
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    try:
        server = start_server()
    except PostgresUnavailable as exc:
        missing_service(f"PostgreSQL ({exc})")
        raise AssertionError("unreachable") from exc
    try:
        server.execute(f"CREATE ROLE {MONITOR_ROLE} LOGIN PASSWORD '{MONITOR_PASSWORD}' IN ROLE pg_monitor")
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(server.datadir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def monitor_dsn(pg_server: PostgresServer) -> str:
    """DSN of a non-superuser member of pg_monitor, as on RDS."""
    return pg_server.dsn("postgres", user=MONITOR_ROLE, password=MONITOR_PASSWORD)
