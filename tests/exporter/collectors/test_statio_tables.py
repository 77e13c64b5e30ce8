"""pg_statio_user_tables: cache hits per table."""

from __future__ import annotations

from tests.support.exporter import DB_A, DB_B, ScrapeAfter


async def test_statio_counts_cache_hits(scrape_after: ScrapeAfter) -> None:
    samples = await scrape_after(DB_B, "SELECT sum(amount) FROM invoices")
    hits = samples.get("pg_statio_user_tables_heap_blocks_hit", datname=DB_B, relname="invoices")
    assert hits is not None and hits > 0
    assert samples.get("pg_statio_user_tables_idx_blocks_hit", datname=DB_B, relname="invoices") is not None
    assert samples.get("pg_statio_user_tables_toast_blocks_read", datname=DB_A, relname="small") is None
