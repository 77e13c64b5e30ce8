"""The families of current postgres_exporter pgwarden lacked: pg_stat_checkpointer_*, pg_buffercache_summary_*,
pg_process_idle_seconds, pg_xlog_location_bytes and pg_stat_statements_query_id, against the real server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import psycopg
import pytest

from devtools import pgversions
from devtools.pgserver import PostgresServer, running_server
from tests.support.exporter import DB_B, Samples, Scraper, make_config
from tests.support.services import missing_service

CURRENT_LSN = "SELECT (pg_current_wal_lsn() - '0/0')::int8"


def version(pg_server: PostgresServer) -> int:
    return int(pg_server.execute("SHOW server_version_num")[0][0])


async def test_checkpointer_on_17_and_nothing_before(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    samples = await scraper_factory(collectors={"stat_checkpointer": {"enabled": True}}).scrape()
    assert samples.get("pg_scrape_collector_success", collector="stat_checkpointer") == 1
    names = [n for n in samples.names() if n.startswith("pg_stat_checkpointer_")]
    if version(pg_server) < 170000:
        assert names == []
        return
    assert_checkpointer(samples, pg_server)


def assert_checkpointer(samples: Samples, server: PostgresServer) -> None:
    """pg_stat_checkpointer's counters, as the server has them, in all nine families."""
    timed, requested, written = server.execute(
        "SELECT num_timed, num_requested, buffers_written FROM pg_stat_checkpointer"
    )[0]
    assert samples.get("pg_stat_checkpointer_num_timed_total") == timed
    assert samples.get("pg_stat_checkpointer_num_requested_total") == requested
    assert samples.get("pg_stat_checkpointer_buffers_written_total") == written
    assert len([n for n in samples.names() if n.startswith("pg_stat_checkpointer_")]) == 9


async def test_buffercache_summary_with_the_extension(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    enabled = {"buffercache_summary": {"enabled": True}}
    without = await scraper_factory(collectors=enabled).scrape()
    assert without.get("pg_scrape_collector_success", collector="buffercache_summary") == 1
    assert without.get("pg_buffercache_summary_buffers_used") is None  # no extension: nothing, no failure
    if version(pg_server) < 160000:
        return
    pg_server.execute("CREATE EXTENSION IF NOT EXISTS pg_buffercache")
    try:
        samples = await scraper_factory(collectors=enabled).scrape()
        assert_buffercache_summary(samples, pg_server)
    finally:
        pg_server.execute("DROP EXTENSION pg_buffercache")


def assert_buffercache_summary(samples: Samples, server: PostgresServer) -> None:
    """pg_buffercache_summary()'s buffers, as the server has them (it has the extension)."""
    used, unused = server.execute("SELECT buffers_used, buffers_unused FROM pg_buffercache_summary()")[0]
    shared = server.execute("SELECT setting::int8 FROM pg_settings WHERE name = 'shared_buffers'")[0][0]
    got_used = samples.get("pg_buffercache_summary_buffers_used")
    got_unused = samples.get("pg_buffercache_summary_buffers_unused")
    assert got_used is not None and got_unused is not None and got_used + got_unused == shared
    assert abs(got_used - used) < shared / 10 and unused >= 0
    average = samples.get("pg_buffercache_summary_usagecount_avg")
    assert average is not None and 0 < average <= 5


@pytest.fixture(scope="module")
def newest() -> Iterator[PostgresServer]:
    """PostgreSQL 18, the pinned build `make test-versions` installs (CI runs it first): the normal suite's 15
    has neither pg_stat_checkpointer nor pg_buffercache_summary(). Without it the test skips, or fails under
    PGWARDEN_REQUIRE_SERVICES=1."""
    bindir = pgversions.bindir(18)
    if not (bindir / "postgres").exists():
        missing_service("PostgreSQL 18 build (python -m devtools.pgversions 18)")
    with running_server(bindir=bindir) as server:
        yield server


async def test_checkpointer_and_buffercache_summary_on_the_newest_server(newest: PostgresServer) -> None:
    newest.execute("CREATE EXTENSION pg_buffercache")
    options = {"stat_checkpointer": {"enabled": True}, "buffercache_summary": {"enabled": True}}
    scraper = Scraper(make_config(newest.dsn("postgres"), collectors=options))
    try:
        samples = await scraper.scrape()
    finally:
        await scraper.close()
    assert version(newest) >= 180000
    for collector in options:
        assert samples.get("pg_scrape_collector_success", collector=collector) == 1, collector
    assert_checkpointer(samples, newest)
    assert_buffercache_summary(samples, newest)


async def test_xlog_location_is_the_wal_position(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    before = pg_server.execute(CURRENT_LSN)[0][0]
    samples = await scraper_factory(collectors={"xlog_location": {"enabled": True}}).scrape()
    after = pg_server.execute(CURRENT_LSN)[0][0]
    got = samples.get("pg_xlog_location_bytes")
    assert got is not None and before % 2**52 <= got <= after % 2**52


async def test_process_idle_histogram(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    with (
        psycopg.connect(pg_server.dsn(DB_B), application_name="exp_idle_one", autocommit=True),
        psycopg.connect(pg_server.dsn(DB_B), application_name="exp_idle_one", autocommit=True),
        psycopg.connect(pg_server.dsn(DB_B), application_name="exp_idle_tx") as in_tx,
    ):
        in_tx.execute(b"SELECT 1")  # opens a transaction: idle in transaction
        await asyncio.sleep(1.2)
        samples = await scraper_factory(collectors={"process_idle": {"enabled": True}}).scrape()
    idle = {"state": "idle", "application_name": "exp_idle_one"}
    assert samples.get("pg_process_idle_seconds_count", **idle) == 2
    assert samples.get("pg_process_idle_seconds_bucket", **idle, le="1") == 0
    assert samples.get("pg_process_idle_seconds_bucket", **idle, le="300") == 2
    assert samples.get("pg_process_idle_seconds_bucket", **idle, le="+Inf") == 2
    total = samples.get("pg_process_idle_seconds_sum", **idle)
    assert total is not None and 2.4 <= total < 60
    tx = {"state": "idle in transaction", "application_name": "exp_idle_tx"}
    assert samples.get("pg_process_idle_seconds_count", **tx) == 1
    assert samples.families["pg_process_idle_seconds"].type == "histogram"


async def test_statements_query_id_and_exclusions(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    with psycopg.connect(pg_server.dsn(DB_B), autocommit=True) as conn:
        conn.execute(b"SELECT count(*) FROM invoices WHERE amount > 7 /* exp query_id */")
    options = {"include_query": True, "query_max_length": 30}
    samples = await scraper_factory(
        limits={"statements_top_n": 0}, collectors={"statements": options}
    ).scrape()
    queryid = pg_server.execute(
        "SELECT queryid::text FROM pg_stat_statements WHERE query LIKE '%exp query_id%' LIMIT 1"
    )[0][0]
    (labels, value), *more = samples.all("pg_stat_statements_query_id", queryid=queryid)
    assert not more and value == 1 and labels["query"] == "SELECT count(*) FROM invoices "  # 30 characters
    assert set(labels) == {"queryid", "query"}
    assert samples.families["pg_stat_statements_query_id"].type == "counter"

    excluded = await scraper_factory(
        limits={"statements_top_n": 0},
        collectors={"statements": {"exclude_databases": [DB_B], "exclude_users": ["nobody"]}},
    ).scrape()
    datnames = {lbl["datname"] for lbl, _ in excluded.all("pg_stat_statements_calls_total")}
    assert datnames and DB_B not in datnames
    by_user = await scraper_factory(
        limits={"statements_top_n": 0}, collectors={"statements": {"exclude_users": ["postgres"]}}
    ).scrape()
    assert "postgres" not in {lbl["user"] for lbl, _ in by_user.all("pg_stat_statements_calls_total")}
