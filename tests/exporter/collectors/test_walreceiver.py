"""pg_stat_wal_receiver on a real standby, checked against the view; nothing on the primary."""

from __future__ import annotations

from collections.abc import Callable

from devtools.pgserver import PostgresServer
from tests.support.exporter import STANDBY_SLOT, Scraper
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE

P = "pg_stat_wal_receiver_"
RECEIVER_SQL = (
    "SELECT pg_wal_lsn_diff(flushed_lsn, '0/0')::float8, pg_wal_lsn_diff(receive_start_lsn, '0/0')::float8, "
    "received_tli, extract(epoch FROM last_msg_receipt_time)::float8 FROM pg_stat_wal_receiver"
)


async def test_standby_wal_receiver_by_value(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, standby: PostgresServer
) -> None:
    pg_server.execute("CHECKPOINT")  # some WAL to stream
    before = standby.execute(RECEIVER_SQL)[0]
    monitor = standby.dsn(user=MONITOR_ROLE, password=MONITOR_PASSWORD)
    samples = await scraper_factory(monitor).scrape()
    after = standby.execute(RECEIVER_SQL)[0]
    labels = {"upstream_host": "127.0.0.1", "slot_name": STANDBY_SLOT, "status": "streaming"}
    flushed = samples.get(P + "flushed_lsn", **labels)
    assert flushed is not None and before[0] <= flushed <= after[0]
    assert samples.get(P + "receive_start_lsn", **labels) == before[1]
    assert samples.get(P + "received_tli", **labels) == before[2] == 1
    assert samples.get(P + "receive_start_tli", **labels) == 1
    receipt = samples.get(P + "last_msg_receipt_time", **labels)
    assert receipt is not None and before[3] <= receipt <= after[3]
    assert samples.get(P + "upstream_node", **labels) is None  # not a repmgr slot
    assert samples.get("pg_replication_is_replica") == 1
    # every collector succeeds on a standby as a pg_monitor member
    results = {lbl["collector"]: v for lbl, v in samples.all("pg_scrape_collector_success")}
    assert results and all(v == 1 for v in results.values()), results


async def test_no_wal_receiver_on_a_primary(scraper_factory: Callable[..., Scraper]) -> None:
    samples = await scraper_factory().scrape()
    assert samples.get("pg_scrape_collector_success", collector="walreceiver") == 1
    assert not [n for n in samples.names() if n.startswith(P)]
