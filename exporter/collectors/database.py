"""pg_stat_database and pg_stat_database_conflicts, one series per database; each database's connection limit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

from exporter.collectors.base import (
    Collector,
    Column,
    ColumnTable,
    available,
    counter,
    fetch_table,
    gauge,
    render_table,
    select_list,
    with_labels,
)
from exporter.collectors.options import CollectorOptions
from exporter.db import Session
from exporter.exposition import Exposition

P = "pg_stat_database_"

COLUMNS: tuple[Column, ...] = (
    Column("numbackends", gauge(P + "numbackends", "Number of backends currently connected to this database.")),
    Column("xact_commit", counter(P + "xact_commit", "Transactions committed.")),
    Column("xact_rollback", counter(P + "xact_rollback", "Transactions rolled back.")),
    Column("blks_read", counter(P + "blks_read", "Disk blocks read.")),
    Column("blks_hit", counter(P + "blks_hit", "Disk blocks found in the buffer cache.")),
    Column("tup_returned", counter(P + "tup_returned", "Rows returned by queries.")),
    Column("tup_fetched", counter(P + "tup_fetched", "Rows fetched by queries.")),
    Column("tup_inserted", counter(P + "tup_inserted", "Rows inserted.")),
    Column("tup_updated", counter(P + "tup_updated", "Rows updated.")),
    Column("tup_deleted", counter(P + "tup_deleted", "Rows deleted.")),
    Column("conflicts", counter(P + "conflicts", "Queries canceled due to conflicts with recovery.")),
    Column("temp_files", counter(P + "temp_files", "Temporary files created by queries.")),
    Column("temp_bytes", counter(P + "temp_bytes", "Data written to temporary files by queries, in bytes.")),
    Column("deadlocks", counter(P + "deadlocks", "Deadlocks detected.")),
    Column("checksum_failures", counter(P + "checksum_failures", "Data page checksum failures.",
                                        absent_when="data checksums are off"), 120000),
    Column("blk_read_time", counter(P + "blk_read_time", "Time spent reading data file blocks, in milliseconds."),
           cast="float8"),
    Column("blk_write_time", counter(P + "blk_write_time", "Time spent writing data file blocks, in milliseconds."),
           cast="float8"),
    Column("extract(epoch FROM checksum_last_failure)",
           gauge(P + "checksum_last_failure", "Time of the last data page checksum failure (Unix time).",
                 absent_when="no checksum failure ever"),
           120000, cast="float8"),
    # PostgreSQL 14+: postgres_exporter's names and units (milliseconds) kept
    Column("session_time", counter(P + "session_time", "Time spent by sessions, in milliseconds."), 140000,
           cast="float8"),
    Column("active_time", counter(P + "active_time", "Time spent executing statements, in milliseconds."),
           140000, cast="float8"),
    # postgres_exporter main's name and unit for the same column
    Column("active_time", counter(P + "active_time_seconds_total",
                                  "Time spent executing SQL statements in this database, in seconds"),
           140000, scale=0.001, cast="float8"),
    Column("idle_in_transaction_time",
           counter(P + "idle_in_transaction_time", "Time spent idle in transaction, in milliseconds."),
           140000, cast="float8"),
    Column("sessions", counter(P + "sessions", "Sessions established."), 140000),
    Column("sessions_abandoned", counter(P + "sessions_abandoned",
                                         "Sessions ended because the client went away."), 140000),
    Column("sessions_fatal", counter(P + "sessions_fatal", "Sessions ended by fatal errors."), 140000),
    Column("sessions_killed", counter(P + "sessions_killed", "Sessions ended by operator intervention."),
           140000),
    Column("extract(epoch FROM stats_reset)",
           gauge(P + "stats_reset", "Time at which these statistics were last reset (Unix time).",
                 absent_when="statistics never reset"), cast="float8"),
)  # fmt: skip
# A family a supported server version lacks says so (the reference lists it, its test accepts no sample).
COLUMNS = tuple(
    c
    if c.min_version <= 130000 or c.family.absent_when
    else replace(c, family=replace(c.family, absent_when=f"PostgreSQL before {c.min_version // 10000}"))
    for c in COLUMNS
)
CONFLICTS = tuple(
    Column(f"c.{c}", counter(f"pg_stat_database_conflicts_{c}", f"Queries canceled due to {what}."))
    for c, what in (
        ("confl_tablespace", "dropped tablespaces"),
        ("confl_lock", "lock timeouts"),
        ("confl_snapshot", "old snapshots"),
        ("confl_bufferpin", "pinned buffers"),
        ("confl_deadlock", "deadlocks"),
    )
)


LABELS = ("datid", "datname")
CONNECTION_LIMIT = gauge(
    "pg_database_connection_limit", "Connection limit set for the database (-1: no limit).", ("datname",)
)


class DatabaseKeys(NamedTuple):
    datid: Sequence[int]
    datname: Sequence[str]


class ConnectionLimit(NamedTuple):
    datname: str
    connection_limit: int


class Databases(NamedTuple):
    stats: ColumnTable[DatabaseKeys]
    limits: list[ConnectionLimit]


class DatabaseCollector(Collector[Databases, CollectorOptions]):
    name = "database"
    order = 40
    source = "pg_stat_database, pg_stat_database_conflicts, pg_database"
    families = (*with_labels(LABELS, *(c.family for c in COLUMNS + CONFLICTS)), CONNECTION_LIMIT)

    async def fetch(self, session: Session) -> Databases:
        columns = available(COLUMNS, session.server.version_num) + list(CONFLICTS)
        stats = await fetch_table(
            session,
            DatabaseKeys,
            columns,
            f"SELECT d.datid::int8 AS datid, d.datname, {select_list(columns)} FROM pg_stat_database d "
            "JOIN pg_stat_database_conflicts c USING (datid) WHERE d.datname IS NOT NULL ORDER BY d.datname",
        )
        limits = await session.typed(
            ConnectionLimit,
            "SELECT datname, datconnlimit::int8 AS connection_limit FROM pg_database ORDER BY datname",
        )
        return Databases(stats, limits)

    def render(self, out: Exposition, results: Sequence[tuple[str, Databases]]) -> None:
        for _, (table, limits) in results:
            labels = out.label_columns(LABELS, table.keys)
            render_table(out, labels, table)
            for row in limits:
                out.add(
                    CONNECTION_LIMIT,
                    out.labels(CONNECTION_LIMIT.labels, (row.datname,)),
                    row.connection_limit,
                )
