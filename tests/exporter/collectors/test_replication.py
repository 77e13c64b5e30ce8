"""Replication: a primary's lag and replay age, and a real standby seen from both sides."""

from __future__ import annotations

from collections.abc import Callable

from devtools.pgserver import PostgresServer
from tests.support.exporter import STANDBY_SLOT, Scraper, wait_for

CURRENT_LSN = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8"


async def test_a_primary_has_no_lag_and_no_replay(scraper_factory: Callable[..., Scraper]) -> None:
    samples = await scraper_factory().scrape()
    assert samples.get("pg_replication_is_replica") == 0
    assert samples.get("pg_replication_lag_seconds") == 0
    assert samples.get("pg_replication_last_replay_seconds") == 0


async def test_streaming_standby_from_the_primary_and_the_standby(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, standby: PostgresServer
) -> None:
    before = pg_server.execute(CURRENT_LSN)[0][0]
    samples = await scraper_factory().scrape()
    after = pg_server.execute(CURRENT_LSN)[0][0]
    # postgres_exporter's labels: the address as inet::text (with its mask), and the WAL sender's pid
    pid = pg_server.execute("SELECT pid::text FROM pg_stat_replication WHERE state = 'streaming'")[0][0]
    row = {"slot_name": STANDBY_SLOT, "state": "streaming", "client_addr": "127.0.0.1/32", "pid": pid}
    current = samples.get("pg_stat_replication_pg_current_wal_lsn_bytes", **row)
    assert current is not None and before <= current <= after
    behind = samples.get("pg_stat_replication_pg_wal_lsn_diff", **row)
    assert behind is not None and 0 <= behind <= after

    # a transaction replayed on the standby: its replay age is counted from its commit on the primary
    pg_server.execute("CREATE TABLE IF NOT EXISTS exp_replayed (id int); INSERT INTO exp_replayed VALUES (1)")
    replayed = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"
    target = pg_server.execute("SELECT pg_current_wal_insert_lsn()::text")[0][0]  # past the commit
    wait_for(lambda: bool(standby.execute(replayed, params=(target,))[0][0]))
    age_sql = "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
    low = standby.execute(age_sql)[0][0]
    on_standby = await scraper_factory(standby.dsn()).scrape()
    high = standby.execute(age_sql)[0][0]
    assert on_standby.get("pg_replication_is_replica") == 1
    age = on_standby.get("pg_replication_last_replay_seconds")
    assert age is not None and max(low, 0) <= age <= high
    assert on_standby.get("pg_stat_replication_pg_current_wal_lsn_bytes", **row) is None
    pg_server.execute("DROP TABLE exp_replayed")
