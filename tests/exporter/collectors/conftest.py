"""Fixtures of the collector tests: an unprivileged application role to run queries as."""

from __future__ import annotations

import pytest

from devtools.pgserver import PostgresServer
from tests.exporter.conftest import DB_A

APP_ROLE = "exp_app_user"
APP_PASSWORD = "app-user-pw"


@pytest.fixture(scope="module")
def app_role(pg_server: PostgresServer, databases: tuple[str, str]) -> str:
    pg_server.execute(f"DROP ROLE IF EXISTS {APP_ROLE}")
    pg_server.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'")
    return pg_server.dsn(DB_A, user=APP_ROLE, password=APP_PASSWORD)
