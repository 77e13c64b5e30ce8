"""Every collector against the real PostgreSQL server: values checked, not only names."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from devtools.pgserver import PostgresServer
from tests.conftest import MONITOR_ROLE
from tests.exporter.conftest import DB_A, DB_B
from tests.exporter.helpers import Scraper

APP_ROLE = "exp_app_user"
APP_PASSWORD = "app-user-pw"


@pytest.fixture(scope="module")
def app_role(pg_server: PostgresServer, databases: tuple[str, str]) -> str:
    pg_server.execute(f"DROP ROLE IF EXISTS {APP_ROLE}")
    pg_server.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'")
    return pg_server.dsn(DB_A, user=APP_ROLE, password=APP_PASSWORD)


@contextlib.contextmanager
def background_query(dsn: str, sql: str) -> Iterator[int]:
    """Run `sql` in a thread on its own connection; yields the backend pid; cancels it on exit."""
    conn = psycopg.connect(dsn, autocommit=True)
    pid = conn.info.backend_pid
    errors: list[BaseException] = []

    def run() -> None:
        try:
            conn.execute(sql.encode())
        except psycopg.errors.QueryCanceled:
            pass
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield pid
    finally:
        conn.cancel_safe()
        thread.join(10)
        conn.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def flush_stats(pg_server: PostgresServer, db: str, sql: str) -> None:
    """Run statements and flush their statistics at once (PostgreSQL 15 batches them otherwise)."""
    with psycopg.connect(pg_server.dsn(db), autocommit=True) as conn:
        conn.execute(sql.encode())
        conn.execute(b"SELECT pg_stat_force_next_flush()")


async def test_every_collector_succeeds_as_pg_monitor_member(
    scraper_factory: Callable[..., Scraper], monitor_dsn: str
) -> None:
    samples = await scraper_factory(monitor_dsn).scrape()
    assert samples.get("pg_up") == 1
    results = {lbl["collector"]: v for lbl, v in samples.all("pg_scrape_collector_success")}
    assert len(results) == 15
    assert all(v == 1 for v in results.values()), results
    assert samples.get("pg_exporter_last_scrape_error") == 0


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
    with psycopg.connect(pg_server.dsn(DB_B), autocommit=True) as c:
        c.execute(b"SELECT pg_stat_force_next_flush()")
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
    assert after.get("pg_stat_database_sessions", datname=DB_A) is not None


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


async def test_bgwriter_counts_a_requested_checkpoint(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    scraper = scraper_factory()
    before = (await scraper.scrape()).get("pg_stat_bgwriter_checkpoints_req_total")
    pg_server.execute("CHECKPOINT")
    after = await scraper.scrape()
    assert before is not None and after.get("pg_stat_bgwriter_checkpoints_req_total") == before + 1
    for name in ("buffers_alloc", "buffers_backend", "checkpoint_write_time", "buffers_checkpoint"):
        assert after.get(f"pg_stat_bgwriter_{name}_total") is not None, name


async def test_settings_units_normalised(scraper_factory: Callable[..., Scraper]) -> None:
    samples = await scraper_factory().scrape()
    assert samples.get("pg_settings_max_connections") == 200
    assert samples.get("pg_settings_shared_buffers_bytes") == 128 * 1024 * 1024
    assert samples.get("pg_settings_checkpoint_timeout_seconds") == 300
    assert samples.get("pg_settings_statement_timeout_seconds") == 0
    assert samples.get("pg_settings_fsync") == 0  # the test server runs with fsync=off
    assert samples.get("pg_settings_pg_stat_statements_max") == 10000
    assert samples.get("pg_settings_work_mem_bytes") == 4 * 1024 * 1024


async def test_postmaster_and_static(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    samples = await scraper_factory().scrape()
    ((labels, value),) = samples.all("pg_static")
    assert value == 1
    version_num = int(pg_server.execute("SHOW server_version_num")[0][0])
    assert labels["short_version"] == f"{version_num // 10000}.{version_num % 10000}.0"
    assert labels["version"].startswith("PostgreSQL 15")
    started = samples.get("pg_postmaster_start_time_seconds")
    assert started is not None and time.time() - 3600 < started <= time.time()


async def test_tables_of_two_databases_with_dead_tuples_and_sizes(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    flush_stats(pg_server, DB_A, "DELETE FROM churn WHERE id <= 5000")
    samples = await scraper_factory().scrape()
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


async def test_statio_counts_cache_hits(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    flush_stats(pg_server, DB_B, "SELECT sum(amount) FROM invoices")
    samples = await scraper_factory().scrape()
    hits = samples.get("pg_statio_user_tables_heap_blks_hit", datname=DB_B, relname="invoices")
    assert hits is not None and hits > 0
    assert samples.get("pg_statio_user_tables_idx_blks_hit", datname=DB_B, relname="invoices") is not None
    assert samples.get("pg_statio_user_tables_toast_blks_read", datname=DB_A, relname="small") is None


async def test_unused_index_is_flagged(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    flush_stats(pg_server, DB_A, "SET enable_seqscan = off; SELECT count(*) FROM orders WHERE customer = 7")
    samples = await scraper_factory().scrape()
    used = {"datname": DB_A, "relname": "orders", "indexrelname": "orders_customer_idx"}
    unused = {"datname": DB_A, "relname": "orders", "indexrelname": "orders_note_idx"}
    pkey = {"datname": DB_A, "relname": "orders", "indexrelname": "orders_pkey"}
    assert samples.get("pg_index_unused", **unused) == 1
    assert samples.get("pg_stat_user_indexes_idx_scan", **unused) == 0
    assert samples.get("pg_index_unused", **used) == 0
    scans = samples.get("pg_stat_user_indexes_idx_scan", **used)
    assert scans is not None and scans >= 1
    assert samples.get("pg_index_unused", **pkey) == 0  # a primary key is never a candidate to drop
    size = pg_server.execute("SELECT pg_relation_size('orders_note_idx')", dbname=DB_A)[0][0]
    assert samples.get("pg_index_size_bytes", **unused) == size


async def test_statements_top_n_counters(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    with psycopg.connect(pg_server.dsn(DB_B), autocommit=True) as conn:
        for _ in range(7):
            conn.execute(b"SELECT (SELECT count(*) FROM invoices WHERE amount > 250), pg_sleep(0.01)")
    queryid, calls = pg_server.execute(
        "SELECT queryid::text, calls FROM pg_stat_statements WHERE query LIKE '%amount > $1), pg_sleep%' "
        "AND toplevel"
    )[0]
    assert calls == 7
    samples = await scraper_factory().scrape()
    labels = {"user": "postgres", "datname": DB_B, "queryid": queryid}
    assert samples.get("pg_stat_statements_calls_total", **labels) == 7
    assert samples.get("pg_stat_statements_rows_total", **labels) == 7
    seconds = samples.get("pg_stat_statements_seconds_total", **labels)
    assert seconds is not None and 0.07 <= seconds < 1
    mean = samples.get("pg_stat_statements_mean_seconds", **labels)
    assert mean is not None and mean == pytest.approx(seconds / 7)
    maximum = samples.get("pg_stat_statements_max_seconds", **labels)
    assert maximum is not None and maximum >= mean
    assert samples.get("pg_stat_statements_query_info", **labels) is None  # query text off by default

    capped = await scraper_factory(
        limits={"statements_top_n": 2}, collectors={"statements": {"include_query": True}}
    ).scrape()
    rows = capped.all("pg_stat_statements_calls_total")
    assert len(rows) == 2
    total = pg_server.execute("SELECT count(DISTINCT (userid, dbid, queryid)) FROM pg_stat_statements")[0][0]
    cut = capped.get("pg_exporter_rows_cut", collector="statements")
    assert cut is not None and cut >= total - 2 - 5 and cut > 0
    infos = capped.all("pg_stat_statements_query_info")
    assert len(infos) == 2 and all(lbl["query"] for lbl, _ in infos)


async def test_replication_on_a_primary_with_a_slot(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    pg_server.execute("SELECT pg_create_physical_replication_slot('exp_standby_slot', true)")
    try:
        samples = await scraper_factory().scrape()
    finally:
        pg_server.execute("SELECT pg_drop_replication_slot('exp_standby_slot')")
    assert samples.get("pg_replication_is_replica") == 0
    assert samples.get("pg_replication_lag_seconds") == 0
    assert samples.get("pg_replication_slots_active", slot_name="exp_standby_slot") == 0
    retained = samples.get("pg_replication_slots_pg_wal_lsn_diff", slot_name="exp_standby_slot")
    assert retained is not None and retained >= 0


async def test_wraparound_ages(scraper_factory: Callable[..., Scraper], pg_server: PostgresServer) -> None:
    samples = await scraper_factory().scrape()
    age = pg_server.execute(f"SELECT age(datfrozenxid) FROM pg_database WHERE datname = '{DB_A}'")[0][0]
    got = samples.get("pg_database_xid_age", datname=DB_A)
    assert got is not None and age - 50 <= got <= age + 50
    ratio = samples.get("pg_database_wraparound_ratio", datname=DB_A)
    assert ratio == pytest.approx(got / 2**31)
    assert samples.get("pg_database_wraparound_age_datfrozenxid_seconds", datname=DB_A) == got


async def test_bloat_estimate_needs_readable_statistics(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, monitor_dsn: str
) -> None:
    pg_server.execute(
        "DROP TABLE IF EXISTS bloated; CREATE TABLE bloated (id int, v text); "
        "ALTER TABLE bloated SET (autovacuum_enabled = off); "
        "INSERT INTO bloated SELECT g, md5(g::text) FROM generate_series(1, 50000) g; "
        "DELETE FROM bloated WHERE id % 10 <> 0; ANALYZE bloated",
        dbname=DB_A,
    )
    samples = await scraper_factory().scrape()
    ratio = samples.get("pg_table_bloat_ratio", datname=DB_A, relname="bloated")
    assert ratio is not None and 0.8 < ratio < 0.95
    pages = pg_server.execute("SELECT pg_relation_size('bloated')", dbname=DB_A)[0][0]
    bloat = samples.get("pg_table_bloat_bytes", datname=DB_A, relname="bloated")
    assert bloat is not None and 0.8 * pages < bloat < pages
    fresh = samples.get("pg_table_bloat_ratio", datname=DB_A, relname="orders")
    assert fresh is not None and fresh < 0.2

    # pg_stats hides rows of tables the role cannot read: no estimate rather than a wrong one.
    monitor = await scraper_factory(monitor_dsn).scrape()
    assert monitor.get("pg_table_bloat_ratio", datname=DB_A, relname="bloated") is None
    pg_server.execute(f"GRANT SELECT ON bloated TO {MONITOR_ROLE}", dbname=DB_A)
    monitor = await scraper_factory(monitor_dsn).scrape()
    assert monitor.get("pg_table_bloat_ratio", datname=DB_A, relname="bloated") == pytest.approx(ratio)


async def test_caps_keep_the_largest_and_count_the_cut(scraper_factory: Callable[..., Scraper]) -> None:
    samples = await scraper_factory(limits={"tables_per_database": 1, "indexes_per_database": 2}).scrape()
    kept = [lbl["relname"] for lbl, _ in samples.all("pg_stat_user_tables_seq_scan", datname=DB_A)]
    assert len(kept) == 1 and kept[0] in ("orders", "churn")
    total = len((await scraper_factory().scrape()).all("pg_stat_user_tables_seq_scan", datname=DB_A))
    assert samples.get("pg_exporter_rows_cut", collector="tables", datname=DB_A) == total - 1
    assert len(samples.all("pg_stat_user_indexes_idx_scan", datname=DB_A)) == 2
    assert len(samples.all("pg_statio_user_tables_heap_blks_hit", datname=DB_A)) == 1


async def test_database_include_and_exclude(scraper_factory: Callable[..., Scraper]) -> None:
    only_b = await scraper_factory(target={"databases": {"include": [DB_B]}}).scrape()
    assert {lbl["datname"] for lbl, _ in only_b.all("pg_stat_user_tables_seq_scan")} == {DB_B}
    not_b = await scraper_factory(target={"databases": {"exclude": [DB_B]}}).scrape()
    dbs = {lbl["datname"] for lbl, _ in not_b.all("pg_stat_user_tables_seq_scan")}
    assert DB_A in dbs and DB_B not in dbs


async def test_ttl_cache_serves_until_expiry(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    cached = scraper_factory(collectors={"tables": {"ttl": "1h"}})
    uncached = scraper_factory(collectors={"tables": {"ttl": "0s"}})
    await cached.scrape()
    await uncached.scrape()
    pg_server.execute("DROP TABLE IF EXISTS appeared; CREATE TABLE appeared (id int)", dbname=DB_B)
    try:
        again = await cached.scrape()
        assert again.get("pg_stat_user_tables_seq_scan", datname=DB_B, relname="appeared") is None
        age = again.get("pg_exporter_collector_data_age_seconds", collector="tables")
        assert age is not None and age > 0
        assert again.get("pg_exporter_collector_data_age_seconds", collector="activity") == 0
        fresh = await uncached.scrape()
        assert fresh.get("pg_stat_user_tables_seq_scan", datname=DB_B, relname="appeared") == 0
    finally:
        pg_server.execute("DROP TABLE appeared", dbname=DB_B)


async def test_slow_collector_fails_alone(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    """A table locked by a migration makes the size query wait; only that collector fails."""
    scraper = scraper_factory(collectors={"tables": {"timeout": "300ms"}, "indexes": {"timeout": "300ms"}})
    holder = psycopg.connect(pg_server.dsn(DB_B))
    try:
        holder.execute(b"LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        samples = await scraper.scrape()
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert elapsed < 3
    assert samples.get("pg_up") == 1
    assert samples.get("pg_scrape_collector_success", collector="tables") == 0
    assert samples.get("pg_scrape_collector_success", collector="activity") == 1
    assert samples.get("pg_exporter_last_scrape_error") == 1
    assert samples.all("pg_stat_user_tables_seq_scan") == []
    # and it recovers on the next scrape once the lock is gone
    again = await scraper.scrape()
    assert again.get("pg_scrape_collector_success", collector="tables") == 1


async def test_archiver_without_archiving(scraper_factory: Callable[..., Scraper]) -> None:
    samples = await scraper_factory().scrape()
    assert samples.get("pg_stat_archiver_archived_count") == 0
    assert samples.get("pg_stat_archiver_failed_count") == 0
    assert samples.get("pg_stat_archiver_last_archive_age") is None  # never archived: absent, not 0
