"""pg_statio_user_indexes: an index's buffer hits and reads, equal to the view's."""

from __future__ import annotations

from collections.abc import Callable

from devtools.pgserver import PostgresServer
from tests.support.exporter import DB_A, Scraper, flush_stats

P = "pg_statio_user_indexes_"


async def test_index_block_counters_by_value(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    flush_stats(pg_server, DB_A, "SET enable_seqscan = off; SELECT count(*) FROM orders WHERE customer = 3")
    hit, read = pg_server.execute(
        "SELECT idx_blks_hit, idx_blks_read FROM pg_statio_user_indexes WHERE indexrelname = 'orders_customer_idx'",
        dbname=DB_A,
    )[0]
    samples = await scraper_factory().scrape()
    index = {
        "datname": DB_A,
        "schemaname": "public",
        "relname": "orders",
        "indexrelname": "orders_customer_idx",
    }
    assert hit > 0
    assert samples.get(P + "idx_blks_hit_total", **index) == hit
    assert samples.get(P + "idx_blks_read_total", **index) == read
    capped = await scraper_factory(limits={"indexes_per_database": 1}).scrape()
    assert len(capped.all(P + "idx_blks_hit_total", datname=DB_A)) == 1
    total = pg_server.execute("SELECT count(*) FROM pg_statio_user_indexes", dbname=DB_A)[0][0]
    assert capped.get("pg_exporter_rows_cut", collector="statio_indexes", datname=DB_A) == total - 1
