"""The bloat estimate, and why it needs readable statistics."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devtools.pgserver import PostgresServer
from tests.support.exporter import DB_A, Scraper
from tests.support.postgres import MONITOR_ROLE


async def test_bloat_estimate_needs_readable_statistics(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, monitor_dsn: str
) -> None:
    pg_server.execute(
        "DROP TABLE IF EXISTS bloated; CREATE TABLE bloated (id int, v text); "
        "ALTER TABLE bloated SET (autovacuum_enabled = off); "
        "INSERT INTO bloated SELECT g, md5(g::text) FROM generate_series(1, 50000) g; "
        "DELETE FROM bloated WHERE id % 10 <> 0; ANALYZE bloated",
        dbname=DB_A,
    )
    samples = await scraper_factory().scrape()
    ratio = samples.get("pg_table_bloat_ratio", datname=DB_A, relname="bloated")
    assert ratio is not None and 0.8 < ratio < 0.95
    pages = pg_server.execute("SELECT pg_relation_size('bloated')", dbname=DB_A)[0][0]
    bloat = samples.get("pg_table_bloat_bytes", datname=DB_A, relname="bloated")
    assert bloat is not None and 0.8 * pages < bloat < pages
    fresh = samples.get("pg_table_bloat_ratio", datname=DB_A, relname="orders")
    assert fresh is not None and fresh < 0.2

    # pg_stats hides rows of tables the role cannot read: no estimate rather than a wrong one.
    monitor = await scraper_factory(monitor_dsn).scrape()
    assert monitor.get("pg_table_bloat_ratio", datname=DB_A, relname="bloated") is None
    pg_server.execute(f"GRANT SELECT ON bloated TO {MONITOR_ROLE}", dbname=DB_A)
    monitor = await scraper_factory(monitor_dsn).scrape()
    assert monitor.get("pg_table_bloat_ratio", datname=DB_A, relname="bloated") == pytest.approx(ratio)
