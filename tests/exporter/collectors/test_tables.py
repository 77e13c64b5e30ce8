"""pg_stat_user_tables in every database, with sizes."""

from __future__ import annotations

import time

from devtools.pgserver import PostgresServer
from tests.support.exporter import DB_A, DB_B, ScrapeAfter


async def test_tables_of_two_databases_with_dead_tuples_and_sizes(
    scrape_after: ScrapeAfter, pg_server: PostgresServer
) -> None:
    samples = await scrape_after(DB_A, "DELETE FROM churn WHERE id <= 5000")
    dead = samples.get("pg_stat_user_tables_n_dead_tup", datname=DB_A, schemaname="public", relname="churn")
    assert dead is not None and dead >= 5000
    assert samples.get("pg_stat_user_tables_n_live_tup", datname=DB_B, relname="invoices") == 500
    assert samples.get("pg_stat_user_tables_n_tup_ins", datname=DB_A, relname="orders") == 20000
    size = pg_server.execute(
        "SELECT pg_table_size('orders'), "
        "(SELECT sum(pg_relation_size(indexrelid)) FROM pg_index WHERE indrelid = 'orders'::regclass)",
        dbname=DB_A,
    )[0]
    assert samples.get("pg_stat_user_tables_table_size_bytes", datname=DB_A, relname="orders") == size[0]
    assert samples.get("pg_stat_user_tables_index_size_bytes", datname=DB_A, relname="orders") == size[1]
    analyzed = samples.get("pg_stat_user_tables_last_analyze", datname=DB_A, relname="orders")
    assert analyzed is not None and time.time() - 3600 < analyzed <= time.time()
    # never vacuumed by hand: absent, not 0
    assert samples.get("pg_stat_user_tables_last_vacuum", datname=DB_A, relname="orders") is None
    assert samples.get("pg_stat_user_tables_idx_scan", datname=DB_A, relname="small") is None  # no index
    assert {lbl["datname"] for lbl, _ in samples.all("pg_stat_user_tables_seq_scan")} >= {DB_A, DB_B}


async def test_a_vacuum_by_hand_has_its_time_and_count(scrape_after: ScrapeAfter) -> None:
    samples = await scrape_after(DB_A, "VACUUM small")
    vacuumed = samples.get("pg_stat_user_tables_last_vacuum", datname=DB_A, relname="small")
    assert vacuumed is not None and time.time() - 3600 < vacuumed <= time.time()
    count = samples.get("pg_stat_user_tables_vacuum_count", datname=DB_A, relname="small")
    assert count is not None and count >= 1
