"""pg_stat_wal_receiver on a standby: where its WAL receiver streams from and how far it has got."""

from __future__ import annotations

from typing import NamedTuple

from exporter.collectors.base import RowsCollector, counter, gauge
from exporter.collectors.options import CollectorOptions
from exporter.exposition import Family

P = "pg_stat_wal_receiver_"
LABELS = ("upstream_host", "slot_name", "status")
NOT_STREAMING = "the server is no standby, or its WAL receiver is not running"


def _family(kind: str, name: str, help_text: str, absent_when: str = NOT_STREAMING) -> Family:
    make = counter if kind == "counter" else gauge
    return make(P + name, help_text, LABELS, absent_when)


# postgres_exporter's names and types (its LSNs and times are counters there)
RECEIVE_START_LSN = _family(
    "counter", "receive_start_lsn", "First WAL position used when the receiver started."
)
FLUSHED_LSN = _family("counter", "flushed_lsn", "Last WAL position received and flushed to disk.")
RECEIVE_START_TLI = _family("gauge", "receive_start_tli", "First timeline used when the receiver started.")
RECEIVED_TLI = _family("gauge", "received_tli", "Timeline of the last WAL position received and flushed.")
LAST_MSG_SEND_TIME = _family(
    "counter", "last_msg_send_time", "Send time of the last message from the WAL sender (Unix time)."
)
LAST_MSG_RECEIPT_TIME = _family(
    "counter", "last_msg_receipt_time", "Receipt time of the last message from the WAL sender (Unix time)."
)
LATEST_END_LSN = _family("counter", "latest_end_lsn", "Last WAL position reported to the WAL sender.")
LATEST_END_TIME = _family(
    "counter", "latest_end_time", "Time of the last WAL position reported to the WAL sender (Unix time)."
)
UPSTREAM_NODE = _family(
    "gauge", "upstream_node", "Node id of the upstream node, from a repmgr slot name (repmgr_slot_<id>).",
    "the slot is not named repmgr_slot_<id>",
)  # fmt: skip


class Receiver(NamedTuple):
    upstream_host: str
    slot_name: str
    status: str
    receive_start_lsn: float
    flushed_lsn: float
    receive_start_tli: int
    received_tli: int
    last_msg_send_time: float
    last_msg_receipt_time: float
    latest_end_lsn: float
    latest_end_time: float
    upstream_node: int | None


# postgres_exporter skips a receiver when any of these is NULL (a receiver just starting); so does this.
_SQL = r"""
SELECT trim(both '''' FROM substring(conninfo FROM 'host=([^ ]*)')) AS upstream_host, slot_name, status,
       pg_wal_lsn_diff(receive_start_lsn, '0/0')::float8 AS receive_start_lsn,
       pg_wal_lsn_diff(flushed_lsn, '0/0')::float8 AS flushed_lsn,
       receive_start_tli::int8 AS receive_start_tli, received_tli::int8 AS received_tli,
       extract(epoch FROM last_msg_send_time)::float8 AS last_msg_send_time,
       extract(epoch FROM last_msg_receipt_time)::float8 AS last_msg_receipt_time,
       pg_wal_lsn_diff(latest_end_lsn, '0/0')::float8 AS latest_end_lsn,
       extract(epoch FROM latest_end_time)::float8 AS latest_end_time,
       substring(slot_name FROM 'repmgr_slot_([0-9]+)')::int8 AS upstream_node
FROM pg_stat_wal_receiver
WHERE conninfo ~ 'host=' AND slot_name IS NOT NULL AND status IS NOT NULL
  AND receive_start_lsn IS NOT NULL AND flushed_lsn IS NOT NULL AND receive_start_tli IS NOT NULL
  AND received_tli IS NOT NULL AND last_msg_send_time IS NOT NULL AND last_msg_receipt_time IS NOT NULL
  AND latest_end_lsn IS NOT NULL AND latest_end_time IS NOT NULL
"""


class WalReceiverCollector(RowsCollector[Receiver, CollectorOptions]):
    name = "walreceiver"
    source = "pg_stat_wal_receiver"
    # in the order of Receiver's fields after its labels
    families = (
        RECEIVE_START_LSN, FLUSHED_LSN, RECEIVE_START_TLI, RECEIVED_TLI, LAST_MSG_SEND_TIME,
        LAST_MSG_RECEIPT_TIME, LATEST_END_LSN, LATEST_END_TIME, UPSTREAM_NODE,
    )  # fmt: skip
    row = Receiver
    sql = _SQL
