"""Collecting through a migration: a table locked ACCESS EXCLUSIVE in another session, databases dropped or
closed to connections between the listing and the fetch, and one that refuses the exporter's role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from devtools.pgserver import PostgresServer
from exporter.db import ServerInfo, Session
from exporter.sizes import RelationSizes
from tests.support.exporter import DB_A, DB_B, Samples, Scraper, background_query, wait_for

# Every refresh measures again (size_ttl 0), and a size read queued behind the lock (1 s lock_timeout) would
# overrun the tables collector's timeout and fail it.
EVERY_SCRAPE = {
    "defaults": {"ttl": "0s", "size_ttl": "0s"},
    "tables": {"timeout": "800ms"},
    "indexes": {"timeout": "800ms"},
}


def table_size(pg_server: PostgresServer, db: str, table: str) -> int:
    return int(pg_server.execute(f"SELECT pg_table_size('{table}')", dbname=db)[0][0])


@pytest.fixture
def migration(pg_server: PostgresServer) -> Iterator[psycopg.Connection[Any]]:
    """A session holding ACCESS EXCLUSIVE on invoices, as a migration's ALTER TABLE does, until the test ends."""
    holder = psycopg.connect(pg_server.dsn(DB_B))
    holder.execute(b"LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE")
    try:
        yield holder
    finally:
        holder.rollback()
        holder.close()


def assert_served_with_stale_size(samples: Samples, size: float | None) -> None:
    assert samples.get("pg_exporter_last_scrape_error") == 0
    for collector in ("tables", "indexes", "statio_tables"):
        assert samples.get("pg_scrape_collector_success", collector=collector) == 1, collector
    assert samples.get("pg_stat_user_tables_n_live_tup", datname=DB_B, relname="invoices") == 500
    assert samples.get("pg_stat_user_tables_table_size_bytes", datname=DB_B, relname="invoices") == size
    assert samples.get("pg_exporter_sizes_stale", collector="tables", datname=DB_B) == 1
    assert samples.get("pg_exporter_sizes_stale", collector="tables", datname=DB_A) == 0
    assert (
        samples.get("pg_exporter_sizes_stale", collector="indexes", datname=DB_B) == 0
    )  # its index: unlocked
    assert samples.get("pg_stat_user_tables_n_live_tup", datname=DB_A, relname="small") == 2


async def test_a_locked_table_keeps_its_last_size_and_its_other_series(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    scraper = scraper_factory(collectors=EVERY_SCRAPE)
    before = await scraper.scrape()
    size = table_size(pg_server, DB_B, "invoices")
    assert before.get("pg_stat_user_tables_table_size_bytes", datname=DB_B, relname="invoices") == size
    assert before.get("pg_exporter_sizes_stale", collector="tables", datname=DB_B) == 0
    holder = psycopg.connect(pg_server.dsn(DB_B))
    try:
        holder.execute(b"LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE")
        assert_served_with_stale_size(await scraper.scrape(), size)
        assert_served_with_stale_size(await scraper.scrape(), size)  # and on every refresh while it lasts
    finally:
        holder.rollback()
        holder.close()
    after = await scraper.scrape()
    assert after.get("pg_exporter_sizes_stale", collector="tables", datname=DB_B) == 0
    assert after.get("pg_stat_user_tables_table_size_bytes", datname=DB_B, relname="invoices") == size


async def test_a_table_locked_before_the_first_scrape_has_no_size_but_its_other_series(
    scraper_factory: Callable[..., Scraper], migration: psycopg.Connection[Any]
) -> None:
    assert_served_with_stale_size(await scraper_factory(collectors=EVERY_SCRAPE).scrape(), None)


async def test_a_migration_waiting_for_its_lock_is_not_queued_behind(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    """A migration waiting for ACCESS EXCLUSIVE behind a long transaction: a size read would queue behind it
    (and everything after would queue behind the size read); it is skipped instead."""
    scraper = scraper_factory(collectors=EVERY_SCRAPE)
    await scraper.scrape()
    size = table_size(pg_server, DB_B, "invoices")
    reader = psycopg.connect(pg_server.dsn(DB_B))
    try:
        reader.execute(b"SELECT count(*) FROM invoices")  # holds ACCESS SHARE until rollback
        lock = "DO $$ BEGIN LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE; END $$"
        with background_query(pg_server.dsn(DB_B), lock):
            wait_for(
                lambda: bool(
                    pg_server.execute(
                        "SELECT count(*) FROM pg_locks WHERE relation = 'invoices'::regclass AND NOT granted",
                        dbname=DB_B,
                    )[0][0]
                )
            )
            assert_served_with_stale_size(await scraper.scrape(), size)
    finally:
        reader.rollback()
        reader.close()


class StaleListing(Scraper):
    """A scraper whose database listing names more databases than there are by the time they are visited."""

    def __init__(self, scraper: Scraper, extra: list[str]) -> None:
        self.inner = scraper.inner
        listing = self.inner.databases

        async def stale(server: ServerInfo) -> list[str]:
            return sorted([*await listing(server), *extra])

        self.inner.databases = stale  # type: ignore[method-assign]


async def test_databases_dropped_or_closed_after_the_listing_are_no_failure(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    pg_server.execute("DROP DATABASE IF EXISTS exp_dropped")
    pg_server.execute("CREATE DATABASE exp_dropped")
    pg_server.execute("DROP DATABASE exp_dropped")
    pg_server.execute("DROP DATABASE IF EXISTS exp_closed")
    pg_server.execute("CREATE DATABASE exp_closed")
    pg_server.execute("ALTER DATABASE exp_closed ALLOW_CONNECTIONS false")
    try:
        plain = await scraper_factory().scrape()
        assert "exp_closed" not in {
            lbl["datname"] for lbl, _ in plain.all("pg_scrape_collector_database_success")
        }
        samples = await StaleListing(scraper_factory(), ["exp_dropped", "exp_closed"]).scrape()
    finally:
        pg_server.execute("DROP DATABASE exp_closed")
    assert samples.get("pg_exporter_last_scrape_error") == 0
    visited = {
        lbl["datname"] for lbl, _ in samples.all("pg_scrape_collector_database_success", collector="tables")
    }
    assert {DB_A, DB_B} <= visited and not visited & {"exp_dropped", "exp_closed"}
    assert samples.get("pg_stat_user_tables_n_live_tup", datname=DB_B, relname="invoices") == 500


async def test_a_database_refusing_the_role_drops_only_its_rows(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, monitor_dsn: str
) -> None:
    """CONNECTION LIMIT 0 refuses every role but superusers: the database is listed, its connection fails."""
    pg_server.execute("DROP DATABASE IF EXISTS exp_refusing")
    pg_server.execute("CREATE DATABASE exp_refusing CONNECTION LIMIT 0")
    try:
        samples = await scraper_factory(monitor_dsn).scrape()
    finally:
        pg_server.execute("DROP DATABASE exp_refusing")
    for collector in ("tables", "statio_tables", "indexes", "bloat"):
        assert samples.get("pg_scrape_collector_success", collector=collector) == 0, collector
        success = samples.get(
            "pg_scrape_collector_database_success", collector=collector, datname="exp_refusing"
        )
        assert success == 0, collector
        assert samples.get("pg_scrape_collector_database_success", collector=collector, datname=DB_B) == 1
    assert samples.get("pg_scrape_collector_success", collector="activity") == 1
    assert samples.get("pg_exporter_last_scrape_error") == 1
    assert samples.get("pg_stat_user_tables_n_live_tup", datname=DB_B, relname="invoices") == 500
    assert samples.all("pg_stat_user_tables_seq_scan", datname="exp_refusing") == []
    assert samples.get("pg_exporter_collector_data_age_seconds", collector="tables") == 0  # served


async def test_one_pg_locks_reading_serves_every_database_of_a_refresh(
    pg_server: PostgresServer, databases: tuple[str, str], migration: psycopg.Connection[Any]
) -> None:
    """Reading pg_locks scans the whole lock table: one refresh reads it once for all its databases, and each
    database's tables and indexes are measured in one statement; the lock (in DB_B) is seen all the same."""
    sizes = RelationSizes()
    statements: list[str] = []
    relations = (
        "SELECT c.oid::int8, c.relkind = 'i' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')"
    )
    measured = {}
    sizes.new_refresh()
    for db in databases:
        async with await psycopg.AsyncConnection.connect(pg_server.dsn(db), autocommit=True) as conn:
            await conn.execute(b"SET lock_timeout = 1000")
            session = Session(conn, db, ServerInfo(conn.info.server_version, db), sizes)

            async def rows(sql: str, params: Any = None, session: Session = session) -> list[tuple[Any, ...]]:
                statements.append(sql)
                return await session.rows(sql, params)

            found = await session.rows(relations)
            wanted = {
                "table": [int(oid) for oid, index in found if not index],
                "index": [int(oid) for oid, index in found if index],
            }
            measured[db] = await sizes.measure_kinds(db, rows, wanted)
    assert [sql.startswith("SELECT d.datname, array_agg") for sql in statements] == [True, False, False]
    invoices = int(pg_server.execute("SELECT 'invoices'::regclass::oid::int8", dbname=DB_B)[0][0])
    assert measured[DB_B]["table"].bytes[invoices] is None and measured[DB_B]["table"].stale == 1
    shop = measured[DB_A]["table"]
    assert shop.stale == 0 and shop.bytes and all(size is not None for size in shop.bytes.values())
