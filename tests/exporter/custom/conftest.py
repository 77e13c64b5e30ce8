"""Fixtures of the custom-query tests: two databases with known rows, and Debian's postgres_exporter."""

from __future__ import annotations

import pytest

from devtools.pgserver import PostgresServer
from tests.support.custom_queries import APP_DB, DATABASES, OTHER_DB
from tests.support.exporter import create_databases


@pytest.fixture(scope="session")
def custom_databases(pg_server: PostgresServer) -> tuple[str, str]:
    """`custom_app` with a jobs table of fixed rows (no clock in them), and an empty `custom_other`."""
    create_databases(pg_server, DATABASES)
    return APP_DB, OTHER_DB
