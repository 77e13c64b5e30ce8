"""pg_stat_activity: a long-running query counted, aged and grouped; an autovacuum worker's start time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from devtools.pgserver import PostgresServer
from tests.support.exporter import (
    APP_ROLE,
    DB_A,
    DB_B,
    Scraper,
    ScratchTable,
    background_query,
    flush_stats,
    server_setting,
    wait_for,
)
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE


async def test_long_running_query_is_counted_and_aged(
    scraper_factory: Callable[..., Scraper], app_role: str
) -> None:
    scraper = scraper_factory(collectors={"activity": {"long_running_thresholds": [1, 3600]}})
    with background_query(app_role, "SELECT pg_sleep(60)"):
        await asyncio.sleep(1.3)
        samples = await scraper.scrape()
    assert samples.get("pg_stat_activity_long_running_queries", datname=DB_A, threshold="1") == 1
    assert samples.get("pg_stat_activity_long_running_queries", datname=DB_A, threshold="3600") == 0
    assert samples.get("pg_stat_activity_long_running_queries", datname=DB_B, threshold="1") == 0
    oldest = samples.get("pg_stat_activity_oldest_query_seconds", datname=DB_A, state="active")
    assert oldest is not None and 1.2 <= oldest < 30
    active = samples.all("pg_stat_activity_count", datname=DB_A, state="active", usename=APP_ROLE)
    assert [v for _, v in active] == [1]
    assert active[0][0]["backend_type"] == "client backend"
    assert active[0][0]["wait_event"] == "PgSleep"
    max_tx = samples.get("pg_stat_activity_max_tx_duration", datname=DB_A, state="active", usename=APP_ROLE)
    assert max_tx is not None and max_tx >= 1.2
    ratio = samples.get("pg_stat_activity_connections_ratio")
    assert ratio is not None and 0 < ratio < 1


async def test_every_database_and_state_has_a_series_as_upstream_builds_them(
    scraper_factory: Callable[..., Scraper],
) -> None:
    """postgres_exporter's series identity: every (database, state) pair, 0 when no backend is in it, so
    `sum by (datname) (pg_stat_activity_count)` sees an idle database; background workers (no database) and
    the exporter's own connection are not counted."""
    # the per-database collectors stay in the DSN's database: no connection of the exporter's is in DB_B
    samples = await scraper_factory(target={"databases": {"include": ["postgres"]}}).scrape()
    states = ("active", "idle", "idle in transaction", "idle in transaction (aborted)",
              "fastpath function call", "disabled")  # fmt: skip
    for datname in (DB_B, "template0", "template1"):
        for state in states:
            found = samples.all("pg_stat_activity_count", datname=datname, state=state)
            assert [v for _, v in found] == [0], (datname, state)
            empty = {"usename": "", "application_name": "", "backend_type": "", "wait_event": ""}
            assert all(labels[k] == v for k, v in empty.items() for labels, _ in found)
            assert samples.get("pg_stat_activity_max_tx_duration", datname=datname, state=state) == 0
    every = samples.all("pg_stat_activity_count")
    assert {labels["state"] for labels, _ in every} == set(states)
    assert all(labels["datname"] for labels, _ in every)  # no series for backends without a database


@pytest.fixture
def autovacuumed_table(pg_server: PostgresServer, scratch_table: ScratchTable) -> Iterator[str]:
    """A table autovacuum picks at once and works on slowly (cost delay), with autovacuum waking every second."""
    table = scratch_table(
        DB_B,
        "exp_autovacuumed",
        "(id int) WITH (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0, "
        "autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1, "
        "autovacuum_analyze_threshold = 1000000000)",
    )
    # scratch_table drops the table after the setting is reset: that cancels the worker
    with server_setting(pg_server, "autovacuum_naptime", "1"):
        flush_stats(
            pg_server, DB_B, f"INSERT INTO {table} SELECT generate_series(1, 50000); DELETE FROM {table}"
        )
        yield table


async def test_autovacuum_worker_start_time(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, autovacuumed_table: str
) -> None:
    worker = (
        "SELECT extract(epoch FROM xact_start)::float8 FROM pg_stat_activity "
        f"WHERE query LIKE 'autovacuum: VACUUM public.{autovacuumed_table}%'"
    )
    wait_for(lambda: bool(pg_server.execute(worker)), timeout=30)
    started = pg_server.execute(worker)[0][0]
    samples = await scraper_factory(pg_server.dsn("postgres", MONITOR_ROLE, MONITOR_PASSWORD)).scrape()
    assert samples.get("pg_stat_activity_autovacuum_timestamp_seconds", relname=autovacuumed_table) == started
