"""Fixtures of the collector tests: an unprivileged application role to run queries as, and a streaming
standby of the test server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.pgserver import PostgresServer
from tests.support.exporter import APP_PASSWORD, APP_ROLE, DB_A, STANDBY_SLOT
from tests.support.postgres import hot_standby


@pytest.fixture(scope="module")
def app_role(pg_server: PostgresServer, databases: tuple[str, str]) -> str:
    pg_server.execute(f"DROP ROLE IF EXISTS {APP_ROLE}")
    pg_server.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'")
    return pg_server.dsn(DB_A, user=APP_ROLE, password=APP_PASSWORD)


@pytest.fixture(scope="module")
def standby(pg_server: PostgresServer, databases: tuple[str, str]) -> Iterator[PostgresServer]:
    """A hot standby streaming from the test server through the physical slot `STANDBY_SLOT`."""
    with hot_standby(pg_server, STANDBY_SLOT, "pgwarden-standby-") as server:
        yield server
