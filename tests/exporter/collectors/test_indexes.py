"""pg_stat_user_indexes: scans, sizes and the unused flag."""

from __future__ import annotations

from collections.abc import Callable

from devtools.pgserver import PostgresServer
from tests.support.exporter import DB_A, Scraper, flush_stats


async def test_unused_index_is_flagged(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    flush_stats(pg_server, DB_A, "SET enable_seqscan = off; SELECT count(*) FROM orders WHERE customer = 7")
    samples = await scraper_factory().scrape()
    used = {"datname": DB_A, "relname": "orders", "indexrelname": "orders_customer_idx"}
    unused = {"datname": DB_A, "relname": "orders", "indexrelname": "orders_note_idx"}
    pkey = {"datname": DB_A, "relname": "orders", "indexrelname": "orders_pkey"}
    assert samples.get("pg_index_unused", **unused) == 1
    assert samples.get("pg_stat_user_indexes_idx_scan", **unused) == 0
    assert samples.get("pg_index_unused", **used) == 0
    scans = samples.get("pg_stat_user_indexes_idx_scan", **used)
    assert scans is not None and scans >= 1
    assert samples.get("pg_index_unused", **pkey) == 0  # a primary key is never a candidate to drop
    size = pg_server.execute("SELECT pg_relation_size('orders_note_idx')", dbname=DB_A)[0][0]
    assert samples.get("pg_index_size_bytes", **unused) == size
