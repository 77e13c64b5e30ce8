"""Replication: replica lag and replay age, pg_stat_replication per standby (slots: `replication_slots`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import Collector, gauge
from exporter.collectors.options import CollectorOptions
from exporter.db import Session
from exporter.exposition import Exposition

# postgres_exporter's labels: main added `pid` (two connections of one standby differ by it alone); its
# client_addr is the address as text (`inet::text`: with its mask, 10.0.0.5/32)
STANDBY_LABELS = ("application_name", "client_addr", "state", "slot_name", "pid")
NO_STANDBY = "no standby is streaming from this server"

LAG = gauge("pg_replication_lag_seconds", "Replication lag behind the primary in seconds (0 on a primary).")
IS_REPLICA = gauge("pg_replication_is_replica", "1 when the server is a standby (in recovery), else 0.")
LAST_REPLAY = gauge(
    "pg_replication_last_replay_seconds",
    "Seconds since the last transaction replayed was committed on the primary (0 on a primary).",
)
LSN_DIFF = gauge(
    "pg_stat_replication_pg_wal_lsn_diff",
    "Bytes of WAL the standby has still to replay, seen from the primary.",
    STANDBY_LABELS,
    NO_STANDBY,
)
CURRENT_LSN_BYTES = gauge(
    "pg_stat_replication_pg_current_wal_lsn_bytes",
    "The primary's current WAL position, in bytes, on each standby's row.",
    STANDBY_LABELS,
    NO_STANDBY,
)
REPLAY_LAG = gauge(
    "pg_stat_replication_replay_lag_seconds",
    "Time between flushing WAL here and the standby replaying it.",
    STANDBY_LABELS,
    NO_STANDBY,
)


class Recovery(NamedTuple):
    lag_seconds: float
    is_replica: int
    last_replay_seconds: float


class Standby(NamedTuple):
    application_name: str
    client_addr: str
    state: str
    slot_name: str
    pid: int
    lsn_diff: float | None
    current_lsn_bytes: float | None
    replay_lag: float | None


class Replication(NamedTuple):
    recovery: Recovery
    standbys: list[Standby]


_LAG_SQL = """
SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) END::float8
         AS lag_seconds,
       pg_is_in_recovery()::int4 AS is_replica,
       greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))::float8 AS last_replay_seconds
"""
_STANDBYS_SQL = """
SELECT coalesce(r.application_name, '') AS application_name, coalesce(r.client_addr::text, '') AS client_addr,
       coalesce(r.state, '') AS state, coalesce(s.slot_name::text, '') AS slot_name, r.pid,
       pg_wal_lsn_diff(w.lsn, r.replay_lsn)::float8 AS lsn_diff,
       pg_wal_lsn_diff(w.lsn, '0/0')::float8 AS current_lsn_bytes,
       extract(epoch FROM r.replay_lag)::float8 AS replay_lag
FROM pg_stat_replication r
LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid
-- as postgres_exporter: a cascading standby measures from the WAL it received
CROSS JOIN (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END
            AS lsn) w
"""


class ReplicationCollector(Collector[Replication, CollectorOptions]):
    name = "replication"
    order = 80
    source = "pg_stat_replication, recovery functions"
    families = (LAG, IS_REPLICA, LAST_REPLAY, LSN_DIFF, CURRENT_LSN_BYTES, REPLAY_LAG)

    async def fetch(self, session: Session) -> Replication:
        return Replication(
            (await session.typed(Recovery, _LAG_SQL))[0],
            await session.typed(Standby, _STANDBYS_SQL),
        )

    def render(self, out: Exposition, results: Sequence[tuple[str, Replication]]) -> None:
        for _, (recovery, standbys) in results:
            plain = out.labels((), ())
            out.add(LAG, plain, recovery.lag_seconds)
            out.add(IS_REPLICA, plain, recovery.is_replica)
            out.add(LAST_REPLAY, plain, recovery.last_replay_seconds)
            for s in standbys:
                lbl = out.labels(
                    STANDBY_LABELS, (s.application_name, s.client_addr, s.state, s.slot_name, s.pid)
                )
                out.add(LSN_DIFF, lbl, s.lsn_diff)
                out.add(CURRENT_LSN_BYTES, lbl, s.current_lsn_bytes)
                out.add(REPLAY_LAG, lbl, s.replay_lag)
