"""pg_replication_slots: an unused slot, and the slot a real standby streams through."""

from __future__ import annotations

from collections.abc import Callable

from devtools.pgserver import PostgresServer
from tests.support.exporter import STANDBY_SLOT, Scraper, server_setting

P = "pg_replication_slots_"  # postgres_exporter 0.20's names: pg_replication_slot_* were renamed
U = P  # the slot_type-labelled families, pg_replication_slot_* before 0.20
CURRENT_LSN = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8"


async def test_an_unused_slot(scraper_factory: Callable[..., Scraper], pg_server: PostgresServer) -> None:
    pg_server.execute("SELECT pg_create_physical_replication_slot('exp_idle_slot', true)")
    try:
        before = pg_server.execute(CURRENT_LSN)[0][0]
        samples = await scraper_factory().scrape()
        after = pg_server.execute(CURRENT_LSN)[0][0]
        restart = pg_server.execute(
            "SELECT pg_wal_lsn_diff(restart_lsn, '0/0')::float8 FROM pg_replication_slots "
            "WHERE slot_name = 'exp_idle_slot'"
        )[0][0]
    finally:
        pg_server.execute("SELECT pg_drop_replication_slot('exp_idle_slot')")
    slot = {"slot_name": "exp_idle_slot", "slot_type": "physical"}
    assert samples.get(P + "active", slot_name="exp_idle_slot", database="") == 0
    retained = samples.get(P + "pg_wal_lsn_diff", slot_name="exp_idle_slot", database="")
    assert retained is not None and before - restart <= retained <= after - restart
    current = samples.get(U + "slot_current_wal_lsn", **slot)
    assert current is not None and before <= current <= after
    assert samples.get(U + "slot_is_active", **slot) == 0
    assert samples.get(U + "slot_confirmed_flush_lsn", **slot) is None  # only while active
    assert samples.get(U + "wal_status", **slot, wal_status="reserved") == 1
    assert samples.get(U + "safe_wal_size_bytes", **slot) is None  # max_slot_wal_keep_size = -1


async def test_the_slot_a_standby_streams_through(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, standby: PostgresServer
) -> None:
    with server_setting(pg_server, "max_slot_wal_keep_size", "'1GB'"):
        samples = await scraper_factory().scrape()
        safe = pg_server.execute(
            "SELECT safe_wal_size FROM pg_replication_slots WHERE slot_name = %s", params=(STANDBY_SLOT,)
        )[0][0]
    slot = {"slot_name": STANDBY_SLOT, "slot_type": "physical"}
    assert samples.get(P + "active", slot_name=STANDBY_SLOT, database="") == 1
    assert samples.get(U + "slot_is_active", **slot) == 1
    assert samples.get(U + "slot_confirmed_flush_lsn", **slot) == 0  # a physical slot confirms nothing
    got = samples.get(U + "safe_wal_size_bytes", **slot)
    # WAL written between the scrape and the read shrinks it: within one segment
    assert got is not None and safe is not None and abs(got - safe) <= 16 * 1024 * 1024
    assert samples.get(U + "wal_status", **slot, wal_status="reserved") == 1
    assert not [n for n in samples.names() if n.startswith("pg_replication_slot_")]  # the pre-0.20 names
    on_standby = await scraper_factory(standby.dsn()).scrape()
    assert not [n for n in on_standby.names() if n.startswith(P)]  # a standby has no slot of its own
