"""pg_long_running_transactions: an open transaction counted past the threshold, and its age."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg

from devtools.pgserver import PostgresServer
from tests.support.exporter import DB_B, Scraper
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE

P = "pg_long_running_transactions"


async def test_an_open_transaction_past_the_threshold(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    monitor = pg_server.dsn("postgres", MONITOR_ROLE, MONITOR_PASSWORD)
    short = scraper_factory(monitor, collectors={"long_running_transactions": {"threshold": "1s"}})
    long = scraper_factory(monitor, collectors={"long_running_transactions": {"threshold": "1h"}})
    idle = await short.scrape()
    with psycopg.connect(pg_server.dsn(DB_B)) as conn:  # not autocommit: the SELECT opens a transaction
        conn.execute(b"SELECT count(*) FROM invoices")
        await asyncio.sleep(1.3)
        open_past = await short.scrape()
        open_below = await long.scrape()
        conn.rollback()
    assert idle.get(P) == 0
    assert open_past.get(P) == 1
    assert open_below.get(P) == 0
    for samples in (open_past, open_below):
        oldest = samples.get(P + "_oldest_timestamp_seconds")
        assert oldest is not None and 1.2 <= oldest < 60
