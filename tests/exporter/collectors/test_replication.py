"""Replication on a primary with a slot."""

from __future__ import annotations

from collections.abc import Callable

from devtools.pgserver import PostgresServer
from tests.exporter.helpers import Scraper


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
