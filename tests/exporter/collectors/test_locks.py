"""pg_locks: a held lock and a waiting one."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from devtools.pgserver import PostgresServer
from tests.support.exporter import DB_A, DB_B, Scraper, background_query, wait_for


async def test_locks_held_and_waiting(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    scraper = scraper_factory()
    holder = psycopg.connect(pg_server.dsn(DB_B))
    try:
        holder.execute(b"LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE")
        with background_query(pg_server.dsn(DB_B), "SELECT count(*) FROM invoices"):
            wait_for(
                lambda: (
                    pg_server.execute(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'relation'"
                    )[0][0]
                    > 0
                )
            )
            samples = await scraper.scrape()
    finally:
        holder.rollback()
        holder.close()
    held = samples.get("pg_locks_count", datname=DB_B, mode="accessexclusivelock")
    assert held is not None and held >= 1
    assert samples.get("pg_locks_count", datname=DB_A, mode="accessexclusivelock") == 0
    assert samples.get("pg_locks_count", datname=DB_A, mode="sireadlock") == 0
    waiting = samples.get("pg_locks_waiting", datname=DB_B)
    assert waiting is not None and waiting >= 1
