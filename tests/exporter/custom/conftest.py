"""Fixtures of the custom-query tests: two databases with known rows, and Debian's postgres_exporter."""

from __future__ import annotations

import pytest

from devtools.pgserver import PostgresServer
from tests.support.custom_queries import (
    APP_DB,
    OTHER_DB,
)
from tests.support.exporter import create_databases


@pytest.fixture(scope="session")
def custom_databases(pg_server: PostgresServer) -> tuple[str, str]:
    """`custom_app` with a jobs table of fixed rows (no clock in them), and an empty `custom_other`."""
    create_databases(
        pg_server,
        {
            APP_DB: """
        CREATE TABLE jobs (queue text, created_at timestamptz, weight real, ok bool, cost numeric, tries int);
        INSERT INTO jobs VALUES
          ('mail', '2024-01-02 03:04:05+00', 1.1, true, 10.50, 3),
          ('mail', '2024-01-02 03:05:00+00', 2.5, false, 3, 1),
          ('re"port\\s', '2023-12-31 23:59:59.999+00', 1e7, NULL, NULL, 7),
          ('ünïcode', '1969-12-31 23:59:59.5+00', 0.000001, true, 0.0000001, NULL);
        """,
            OTHER_DB: "",
        },
    )
    return APP_DB, OTHER_DB
