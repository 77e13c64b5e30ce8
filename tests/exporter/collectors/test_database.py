"""pg_stat_database and database sizes: counters, a real deadlock, conflicts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import psycopg
import pytest

from devtools.pgserver import PostgresServer
from tests.support.exporter import DB_A, DB_B, Scraper, flush_stats


async def test_database_counters_sizes_and_deadlocks(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    scraper = scraper_factory()
    before = await scraper.scrape()
    # A real deadlock: two sessions lock two rows in opposite order.
    a = psycopg.connect(pg_server.dsn(DB_B))
    b = psycopg.connect(pg_server.dsn(DB_B))
    try:
        a.execute(b"UPDATE invoices SET amount = amount WHERE id = 1")
        b.execute(b"UPDATE invoices SET amount = amount WHERE id = 2")
        outcome: list[str] = []

        def second() -> None:
            try:
                b.execute(b"UPDATE invoices SET amount = amount WHERE id = 1")
                outcome.append("b ok")
            except psycopg.errors.DeadlockDetected:
                outcome.append("b deadlock")

        t = threading.Thread(target=second)
        t.start()
        await asyncio.sleep(0.2)
        try:
            a.execute(b"UPDATE invoices SET amount = amount WHERE id = 2")
            outcome.append("a ok")
        except psycopg.errors.DeadlockDetected:
            outcome.append("a deadlock")
        a.rollback()
        t.join(10)
        b.rollback()
    finally:
        a.close()
        b.close()
    assert any("deadlock" in o for o in outcome)
    flush_stats(pg_server, DB_B)
    after = await scraper.scrape()
    d0 = before.get("pg_stat_database_deadlocks", datname=DB_B)
    d1 = after.get("pg_stat_database_deadlocks", datname=DB_B)
    assert d0 is not None and d1 == d0 + 1
    commits = after.get("pg_stat_database_xact_commit", datname=DB_A)
    assert commits is not None and commits > 0
    datid = pg_server.execute(f"SELECT oid FROM pg_database WHERE datname = '{DB_A}'")[0][0]
    assert after.all("pg_stat_database_xact_commit", datname=DB_A)[0][0]["datid"] == str(datid)
    size = pg_server.execute(f"SELECT pg_database_size('{DB_A}')")[0][0]
    got = after.get("pg_database_size_bytes", datname=DB_A)
    assert got is not None and abs(got - size) < 1024 * 1024
    assert after.get("pg_stat_database_conflicts_confl_lock", datname=DB_A) == 0
    if int(pg_server.execute("SHOW server_version_num")[0][0]) >= 140000:
        assert after.get("pg_stat_database_sessions", datname=DB_A) is not None
        # postgres_exporter main's seconds beside the milliseconds of the same column
        milliseconds = after.get("pg_stat_database_active_time", datname=DB_A)
        seconds = after.get("pg_stat_database_active_time_seconds_total", datname=DB_A)
        assert milliseconds is not None and seconds == pytest.approx(milliseconds / 1000)


async def test_database_connection_limit(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    pg_server.execute(f"ALTER DATABASE {DB_B} CONNECTION LIMIT 42")
    try:
        samples = await scraper_factory().scrape()
    finally:
        pg_server.execute(f"ALTER DATABASE {DB_B} CONNECTION LIMIT -1")
    assert samples.get("pg_database_connection_limit", datname=DB_B) == 42
    assert samples.get("pg_database_connection_limit", datname=DB_A) == -1
    assert samples.get("pg_database_connection_limit", datname="template0") == -1
