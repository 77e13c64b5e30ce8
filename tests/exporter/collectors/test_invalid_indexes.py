"""pg_index_invalid: the index a failed CREATE INDEX CONCURRENTLY leaves behind."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from devtools.pgserver import PostgresServer
from tests.support.exporter import DB_A, DB_B, Scraper
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE


async def test_a_failed_concurrent_index_build_is_flagged(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    pg_server.execute("CREATE TABLE exp_dupes (id int); INSERT INTO exp_dupes VALUES (1), (1)", dbname=DB_B)
    try:
        with pytest.raises(psycopg.errors.UniqueViolation):
            pg_server.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY exp_dupes_id_key ON exp_dupes (id)", dbname=DB_B
            )
        samples = await scraper_factory(pg_server.dsn("postgres", MONITOR_ROLE, MONITOR_PASSWORD)).scrape()
    finally:
        pg_server.execute("DROP TABLE exp_dupes", dbname=DB_B)
    index = {
        "datname": DB_B,
        "schemaname": "public",
        "relname": "exp_dupes",
        "indexrelname": "exp_dupes_id_key",
    }
    assert samples.get("pg_index_invalid", **index) == 1
    assert samples.all("pg_index_invalid") == [(index, 1.0)]  # valid indexes have no sample
    assert not samples.all("pg_index_invalid", datname=DB_A)
