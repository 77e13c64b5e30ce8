"""Replication: replica lag, pg_stat_replication per standby, replication slots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporter.collectors.base import Collector, gauge, with_labels
from exporter.db import Session
from exporter.exposition import Exposition

LAG = gauge("pg_replication_lag_seconds", "Replication lag behind the primary in seconds (0 on a primary).")
IS_REPLICA = gauge("pg_replication_is_replica", "1 when the server is a standby (in recovery), else 0.")
LSN_DIFF = gauge(
    "pg_stat_replication_pg_wal_lsn_diff",
    "Bytes of WAL the standby has still to replay, seen from the primary.",
)
REPLAY_LAG = gauge(
    "pg_stat_replication_replay_lag_seconds", "Time between flushing WAL here and the standby replaying it."
)
SLOT_ACTIVE = gauge("pg_replication_slots_active", "1 when a process is streaming from the slot, else 0.")
SLOT_RETAINED = gauge(
    "pg_replication_slots_pg_wal_lsn_diff",
    "Bytes of WAL the slot holds back (current WAL position minus restart_lsn).",
)

STANDBY_LABELS = ("application_name", "client_addr", "state", "slot_name")
SLOT_LABELS = ("slot_name", "database")

_LAG_SQL = """
SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) END::float8,
       pg_is_in_recovery()::int4
"""
_STANDBYS_SQL = """
SELECT coalesce(r.application_name, ''), coalesce(host(r.client_addr), ''), coalesce(r.state, ''),
       coalesce(s.slot_name, ''),
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn) END::float8,
       extract(epoch FROM r.replay_lag)::float8
FROM pg_stat_replication r
LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid
"""
_SLOTS_SQL = """
SELECT slot_name, coalesce(database, ''), active::int4,
       CASE WHEN pg_is_in_recovery() OR restart_lsn IS NULL THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) END::float8
FROM pg_replication_slots
"""


class ReplicationCollector(Collector):
    name = "replication"
    source = "pg_stat_replication, pg_replication_slots"
    families = (
        LAG,
        IS_REPLICA,
        *with_labels(STANDBY_LABELS, LSN_DIFF, REPLAY_LAG),
        *with_labels(SLOT_LABELS, SLOT_ACTIVE, SLOT_RETAINED),
    )

    async def fetch(self, session: Session) -> Any:
        return (
            (await session.rows(_LAG_SQL))[0],
            await session.rows(_STANDBYS_SQL),
            await session.rows(_SLOTS_SQL),
        )

    def render(self, out: Exposition, results: Sequence[tuple[str, Any]]) -> None:
        for _, ((lag, is_replica), standbys, slots) in results:
            plain = out.labels((), ())
            out.add(LAG, plain, lag)
            out.add(IS_REPLICA, plain, is_replica)
            for app, addr, state, slot, diff, replay_lag in standbys:
                lbl = out.labels(STANDBY_LABELS, (app, addr, state, slot))
                out.add(LSN_DIFF, lbl, diff)
                out.add(REPLAY_LAG, lbl, replay_lag)
            for slot_name, database, active, retained in slots:
                lbl = out.labels(SLOT_LABELS, (slot_name, database))
                out.add(SLOT_ACTIVE, lbl, active)
                out.add(SLOT_RETAINED, lbl, retained)
