"""Shared fixtures: a real PostgreSQL server (Debian's 15), started once per test session.

When the server binaries are missing the tests that need them skip locally, but fail when
PGWARDEN_REQUIRE_SERVICES=1 (as in CI). PGWARDEN_PG_MAJOR=13..18 runs the session on that major version
instead, from the pinned relocatable builds of devtools.pgversions (`make test-versions`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from devtools import pgversions
from devtools.pgserver import PostgresServer, PostgresUnavailable, start_server
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE, requested_major
from tests.support.services import missing_service


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
