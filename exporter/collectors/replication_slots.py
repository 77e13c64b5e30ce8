"""pg_replication_slots: each slot's activity, the WAL it holds back and how much more it may."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import RowsCollector, gauge
from exporter.collectors.options import CollectorOptions
from exporter.exposition import Exposition

P = "pg_replication_slots_"  # postgres_exporter 0.20's collector/pg_replication_slots.go names (all of them)
LABELS = ("slot_name", "database")
SLOT_LABELS = ("slot_name", "slot_type")

ACTIVE = gauge(P + "active", "1 when a process is streaming from the slot, else 0.", LABELS, "no slot exists")
RETAINED = gauge(
    P + "pg_wal_lsn_diff",
    "Bytes of WAL the slot holds back: the current (on a standby: last received) WAL position minus restart_lsn.",
    LABELS,
    "no slot exists, or none has reserved WAL",
)
CURRENT_LSN = gauge(
    P + "slot_current_wal_lsn",
    "The server's current WAL position (on a standby: last received), in bytes.",
    SLOT_LABELS,
    "no slot exists",
)
CONFIRMED_FLUSH = gauge(
    P + "slot_confirmed_flush_lsn",
    "Last WAL position the slot's consumer confirmed (0 for a physical slot), in bytes; only while active.",
    SLOT_LABELS,
    "no slot is active",
)
IS_ACTIVE = gauge(P + "slot_is_active", "1 when the slot is in use, else 0.", SLOT_LABELS, "no slot exists")
SAFE_WAL = gauge(
    P + "safe_wal_size_bytes",
    "Bytes of WAL that can still be written before the slot is in danger of being lost.",
    SLOT_LABELS,
    "no slot exists, or max_slot_wal_keep_size is -1 (no limit)",
)
WAL_STATUS = gauge(
    P + "wal_status",
    "1, labelled with the availability of the WAL the slot claims (reserved, extended, unreserved, lost).",
    (*SLOT_LABELS, "wal_status"),
    "no slot exists, or none has reserved WAL",
)


class Slot(NamedTuple):
    slot_name: str
    slot_type: str
    database: str
    active: int
    retained: float | None
    current_wal_lsn: float | None
    confirmed_flush_lsn: float
    safe_wal_size: int | None
    wal_status: str | None


_SQL = """
SELECT slot_name, slot_type, coalesce(database, '') AS database, active::int4 AS active,
       pg_wal_lsn_diff(w.lsn, restart_lsn)::float8 AS retained,
       pg_wal_lsn_diff(w.lsn, '0/0')::float8 AS current_wal_lsn,
       pg_wal_lsn_diff(coalesce(confirmed_flush_lsn, '0/0'), '0/0')::float8 AS confirmed_flush_lsn,
       safe_wal_size::int8 AS safe_wal_size, wal_status
FROM pg_replication_slots
CROSS JOIN (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END
            AS lsn) w
ORDER BY slot_name
"""


class ReplicationSlotsCollector(RowsCollector[Slot, CollectorOptions]):
    name = "replication_slots"
    source = "pg_replication_slots"
    families = (ACTIVE, RETAINED, CURRENT_LSN, CONFIRMED_FLUSH, IS_ACTIVE, SAFE_WAL, WAL_STATUS)
    row = Slot
    sql = _SQL

    def render(self, out: Exposition, results: Sequence[tuple[str, list[Slot]]]) -> None:
        for _, slots in results:
            for s in slots:
                lbl = out.labels(LABELS, (s.slot_name, s.database))
                out.add(ACTIVE, lbl, s.active)
                out.add(RETAINED, lbl, s.retained)
                slot_lbl = out.labels(SLOT_LABELS, (s.slot_name, s.slot_type))
                out.add(CURRENT_LSN, slot_lbl, s.current_wal_lsn)
                if s.active:
                    out.add(CONFIRMED_FLUSH, slot_lbl, s.confirmed_flush_lsn)
                out.add(IS_ACTIVE, slot_lbl, s.active)
                out.add(SAFE_WAL, slot_lbl, s.safe_wal_size)
                if s.wal_status is not None:
                    out.add(
                        WAL_STATUS, out.labels(WAL_STATUS.labels, (s.slot_name, s.slot_type, s.wal_status)), 1
                    )
