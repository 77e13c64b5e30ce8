"""What every collector shares: the cardinality caps and their cut count."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.exporter import DB_A, Scraper


async def test_caps_keep_the_largest_and_count_the_cut(scraper_factory: Callable[..., Scraper]) -> None:
    samples = await scraper_factory(limits={"tables_per_database": 1, "indexes_per_database": 2}).scrape()
    kept = [lbl["relname"] for lbl, _ in samples.all("pg_stat_user_tables_seq_scan", datname=DB_A)]
    assert len(kept) == 1 and kept[0] in ("orders", "churn")
    total = len((await scraper_factory().scrape()).all("pg_stat_user_tables_seq_scan", datname=DB_A))
    assert samples.get("pg_exporter_rows_cut", collector="tables", datname=DB_A) == total - 1
    assert len(samples.all("pg_stat_user_indexes_idx_scan", datname=DB_A)) == 2
    assert len(samples.all("pg_statio_user_tables_heap_blocks_hit", datname=DB_A)) == 1
