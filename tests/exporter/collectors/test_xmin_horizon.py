"""pg_xmin_horizon_*: each cause that holds back VACUUM reproduced on a real server, and its holder named.

A long transaction, a prepared transaction and a logical slot's catalog_xmin on a server of this session's
version started with wal_level = logical and max_prepared_transactions > 0 (the session's server has neither);
a physical slot's xmin and a standby's feedback through a real hot standby of the session's server.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator

import psycopg
import pytest

from devtools import pgversions
from devtools.pgserver import PostgresServer, PostgresUnavailable, start_server
from exporter.collectors import COLLECTORS
from exporter.collectors.xmin_horizon import CAUSES
from tests.support.exporter import STANDBY_SLOT, Samples, Scraper, wait_for
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE, requested_major
from tests.support.services import missing_service

AGE, SECONDS = "pg_xmin_horizon_age_xids", "pg_xmin_horizon_age_seconds"
HOLDER = "pg_xmin_horizon_holder_info"
DB = "xmin_shop"
BURNED = 25  # transactions committed while the holder holds its xmin
ONLY_THIS: dict[str, dict[str, object]] = {c.name: {"enabled": c.name == "xmin_horizon"} for c in COLLECTORS}
ONLY_THIS["xmin_horizon"]["holder_min_age_xids"] = 0  # name even the young holders of these tests


@pytest.fixture(scope="module")
def horizon_server() -> Iterator[PostgresServer]:
    """A server of the session's version that can have logical slots and prepared transactions."""
    major = requested_major()
    settings = {"wal_level": "logical", "max_prepared_transactions": "5"}
    try:
        server = start_server(settings=settings, bindir=pgversions.install(major) if major else None)
    except (PostgresUnavailable, pgversions.VersionUnavailable) as exc:
        missing_service(f"PostgreSQL ({exc})")
        raise AssertionError("unreachable") from exc
    try:
        server.execute(f"CREATE ROLE {MONITOR_ROLE} LOGIN PASSWORD '{MONITOR_PASSWORD}' IN ROLE pg_monitor")
        server.execute(f"CREATE DATABASE {DB}")
        server.execute("CREATE TABLE orders (id int PRIMARY KEY)", dbname=DB)
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(server.datadir.parent, ignore_errors=True)


def monitor(server: PostgresServer) -> str:
    return server.dsn("postgres", MONITOR_ROLE, MONITOR_PASSWORD)


def burn(server: PostgresServer, count: int = BURNED) -> None:
    """Commit `count` transactions that each take a transaction ID."""
    with psycopg.connect(server.dsn(DB), autocommit=True) as conn:
        for _ in range(count):
            conn.execute(b"SELECT txid_current()")


def age(server: PostgresServer, sql: str) -> int:
    return int(server.execute(sql, dbname=DB)[0][0])


def holders(samples: Samples) -> dict[str, dict[str, str]]:
    """cause -> the labels of its holder's info series."""
    found = {lbl["cause"]: lbl for lbl, value in samples.all(HOLDER) if value == 1}
    assert len(found) == len(samples.all(HOLDER)), "one holder per cause"
    return found


async def test_nothing_holds_the_horizon_on_an_idle_server(
    scraper_factory: Callable[..., Scraper], horizon_server: PostgresServer
) -> None:
    samples = await scraper_factory(monitor(horizon_server), collectors=ONLY_THIS).scrape()
    assert {lbl["cause"]: v for lbl, v in samples.all(AGE)} == dict.fromkeys(CAUSES, 0)
    assert holders(samples) == {}
    assert samples.all(SECONDS) == []


async def test_a_long_transaction_is_named_by_its_backend(
    scraper_factory: Callable[..., Scraper], horizon_server: PostgresServer
) -> None:
    scraper = scraper_factory(monitor(horizon_server), collectors=ONLY_THIS)
    # not autocommit: the snapshot stays until the rollback
    with psycopg.connect(horizon_server.dsn(DB), application_name="nightly-report") as holder:
        holder.execute(b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        holder.execute(b"SELECT count(*) FROM orders")
        pid = holder.info.backend_pid
        burn(horizon_server)
        await asyncio.sleep(1.1)
        samples = await scraper.scrape()
        held = age(horizon_server, f"SELECT age(backend_xmin) FROM pg_stat_activity WHERE pid = {pid}")
        holder.rollback()
    got = samples.get(AGE, cause="transaction")
    assert got is not None and BURNED <= got <= held
    seconds = samples.get(SECONDS, cause="transaction")
    assert seconds is not None and 1.0 <= seconds < 60
    transaction = holders(samples)["transaction"]
    assert transaction == {
        "cause": "transaction",
        "datname": DB,
        "pid": str(pid),
        "usename": "postgres",
        "application_name": "nightly-report",
        "state": "idle in transaction",
        "slot_name": "",
        "gid": "",
    }
    after = await scraper.scrape()
    assert after.get(AGE, cause="transaction") == 0 and "transaction" not in holders(after)


async def test_a_holder_younger_than_the_minimum_is_not_named(
    scraper_factory: Callable[..., Scraper], horizon_server: PostgresServer
) -> None:
    """By default a holder is named from 100,000 transaction IDs on: its age is there, its name is not."""
    defaults = {**ONLY_THIS, "xmin_horizon": {}}
    with psycopg.connect(horizon_server.dsn(DB)) as holder:
        holder.execute(b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        holder.execute(b"SELECT count(*) FROM orders")
        burn(horizon_server)
        samples = await scraper_factory(monitor(horizon_server), collectors=defaults).scrape()
        holder.rollback()
    got = samples.get(AGE, cause="transaction")
    assert got is not None and BURNED <= got < 100_000
    assert samples.get(SECONDS, cause="transaction") is not None
    assert holders(samples) == {}


async def test_a_prepared_transaction_is_named_by_its_gid(
    scraper_factory: Callable[..., Scraper], horizon_server: PostgresServer
) -> None:
    scraper = scraper_factory(monitor(horizon_server), collectors=ONLY_THIS)
    with psycopg.connect(horizon_server.dsn(DB)) as conn:
        conn.execute(b"INSERT INTO orders VALUES (1)")
        conn.execute(b"PREPARE TRANSACTION 'xmin-forgotten-2pc'")
    try:
        burn(horizon_server)
        samples = await scraper.scrape()
        held = age(horizon_server, "SELECT age(transaction) FROM pg_prepared_xacts")
    finally:
        horizon_server.execute("ROLLBACK PREPARED 'xmin-forgotten-2pc'", dbname=DB)
    got = samples.get(AGE, cause="prepared_transaction")
    assert got is not None and BURNED <= got <= held
    assert (samples.get(SECONDS, cause="prepared_transaction") or -1) >= 0
    assert holders(samples)["prepared_transaction"] == {
        "cause": "prepared_transaction",
        "datname": DB,
        "pid": "",
        "usename": "postgres",
        "application_name": "",
        "state": "",
        "slot_name": "",
        "gid": "xmin-forgotten-2pc",
    }
    after = await scraper.scrape()
    assert after.get(AGE, cause="prepared_transaction") == 0


async def test_a_logical_slot_holds_the_catalog_xmin(
    scraper_factory: Callable[..., Scraper], horizon_server: PostgresServer
) -> None:
    scraper = scraper_factory(monitor(horizon_server), collectors=ONLY_THIS)
    horizon_server.execute(
        "SELECT pg_create_logical_replication_slot('xmin_logical_slot', 'test_decoding')", dbname=DB
    )
    try:
        burn(horizon_server)
        samples = await scraper.scrape()
        held = age(horizon_server, "SELECT age(catalog_xmin) FROM pg_replication_slots")
        data_xmin = horizon_server.execute("SELECT xmin FROM pg_replication_slots")[0][0]
    finally:
        horizon_server.execute("SELECT pg_drop_replication_slot('xmin_logical_slot')")
    got = samples.get(AGE, cause="replication_slot_catalog_xmin")
    assert got is not None and BURNED <= got <= held
    assert samples.get(SECONDS, cause="replication_slot_catalog_xmin") is None  # a slot has no start time
    assert holders(samples)["replication_slot_catalog_xmin"] == {
        "cause": "replication_slot_catalog_xmin",
        "datname": DB,
        "pid": "",
        "usename": "",
        "application_name": "",
        "state": "inactive",
        "slot_name": "xmin_logical_slot",
        "gid": "",
    }
    assert data_xmin is None  # a logical slot holds back the catalogs only
    assert samples.get(AGE, cause="replication_slot_xmin") == 0
    after = await scraper.scrape()
    assert after.get(AGE, cause="replication_slot_catalog_xmin") == 0


def _standby_xmin(pg_server: PostgresServer, sql: str) -> int | None:
    rows = pg_server.execute(sql)
    return None if not rows or rows[0][0] is None else int(rows[0][0])


def reconfigure(standby: PostgresServer, **settings: str) -> None:
    for name, value in settings.items():
        standby.execute(f"ALTER SYSTEM SET {name} = {value}")
    standby.execute("SELECT pg_reload_conf()")


async def test_a_standby_holds_it_through_its_slot_then_through_its_feedback(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, standby: PostgresServer
) -> None:
    """hot_standby_feedback with a slot sets the slot's xmin; without one, the walsender's backend_xmin."""
    scraper = scraper_factory(monitor(pg_server), collectors=ONLY_THIS)
    idle = await scraper.scrape()
    assert idle.get(AGE, cause="replication_slot_xmin") == 0  # a physical slot holds no xmin without feedback
    slot_xmin = f"SELECT age(xmin) FROM pg_replication_slots WHERE slot_name = '{STANDBY_SLOT}'"
    feedback_xmin = "SELECT age(backend_xmin) FROM pg_stat_replication"
    reconfigure(standby, hot_standby_feedback="on", wal_receiver_status_interval="'1s'")
    wait_for(lambda: _standby_xmin(pg_server, slot_xmin) is not None, timeout=30)
    samples = await scraper.scrape()
    walsender = pg_server.execute("SELECT pid FROM pg_stat_replication")[0][0]
    got = samples.get(AGE, cause="replication_slot_xmin")
    assert got is not None and got <= (_standby_xmin(pg_server, slot_xmin) or 0)
    assert holders(samples)["replication_slot_xmin"] == {
        "cause": "replication_slot_xmin",
        "datname": "",
        "pid": str(walsender),
        "usename": "",
        "application_name": "",
        "state": "active",
        "slot_name": STANDBY_SLOT,
        "gid": "",
    }
    reconfigure(standby, primary_slot_name="''")  # the walreceiver reconnects without the slot
    try:
        wait_for(lambda: _standby_xmin(pg_server, feedback_xmin) is not None, timeout=30)
        with psycopg.connect(standby.dsn()) as reader:  # a snapshot on the standby, as a report would hold
            reader.execute(b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            reader.execute(b"SELECT count(*) FROM pg_class")
            with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
                for _ in range(BURNED):
                    conn.execute(b"SELECT txid_current()")
            wait_for(lambda: (_standby_xmin(pg_server, feedback_xmin) or 0) >= BURNED, timeout=30)
            samples = await scraper.scrape()
            held = _standby_xmin(pg_server, feedback_xmin)
            walsender = pg_server.execute("SELECT pid FROM pg_stat_replication")[0][0]
            reader.rollback()
    finally:
        reconfigure(standby, primary_slot_name=f"'{STANDBY_SLOT}'", hot_standby_feedback="off")
        streaming = "SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'"
        wait_for(lambda: bool(pg_server.execute(streaming)))
    got = samples.get(AGE, cause="standby_feedback")
    assert got is not None and held is not None and BURNED <= got <= held
    feedback = holders(samples)["standby_feedback"]
    assert feedback["pid"] == str(walsender) and feedback["state"] == "streaming"
    assert feedback["slot_name"] == "" and feedback["usename"] == "postgres"
    assert feedback["application_name"]  # the standby's (walreceiver) name
    on_standby = await scraper_factory(standby.dsn(), collectors=ONLY_THIS).scrape()
    assert on_standby.get("pg_scrape_collector_success", collector="xmin_horizon") == 1
