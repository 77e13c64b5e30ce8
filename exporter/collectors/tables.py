"""pg_stat_user_tables in every database, with table and index sizes; capped per database, largest first."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import compress
from typing import Any, NamedTuple

from exporter.collectors import statio_tables
from exporter.collectors.base import (
    Collector,
    Column,
    ColumnTable,
    available,
    counter,
    fetch_table_probing,
    gauge,
    render_capped,
    select_list,
    with_labels,
)
from exporter.collectors.options import CollectorOptions
from exporter.collectors.relations import STORED, user_tables_sql
from exporter.db import Session
from exporter.exposition import Exposition
from exporter.sizes import render_stale

P = "pg_stat_user_tables_"
LABELS = ("datname", "schemaname", "relname")


def _ts(function: str, name: str, what: str) -> Column:
    return Column(
        f"extract(epoch FROM {function}(c.oid))",
        gauge(
            P + name, f"Last time this table was {what} (Unix time); absent if never.", absent_when="never"
        ),
        cast="float8",
    )


# pg_stat_user_tables' own definition, minus its GROUP BY over a join with pg_index: the per-index sums come
# from the user tables' LATERAL subquery `x` instead, which is three times cheaper on 10,000 tables.
COLUMNS = (
    Column("pg_stat_get_numscans(c.oid)", counter(P + "seq_scan", "Sequential scans initiated on this table.")),
    Column("pg_stat_get_tuples_returned(c.oid)", counter(P + "seq_tup_read", "Live rows fetched by sequential scans.")),
    Column("x.idx_scan", counter(P + "idx_scan", "Index scans initiated on this table.")),
    Column("x.idx_fetch + pg_stat_get_tuples_fetched(c.oid)",
           counter(P + "idx_tup_fetch", "Live rows fetched by index scans.")),
    Column("pg_stat_get_tuples_inserted(c.oid)", counter(P + "n_tup_ins", "Rows inserted.")),
    Column("pg_stat_get_tuples_updated(c.oid)", counter(P + "n_tup_upd", "Rows updated (including HOT updates).")),
    Column("pg_stat_get_tuples_deleted(c.oid)", counter(P + "n_tup_del", "Rows deleted.")),
    Column("pg_stat_get_tuples_hot_updated(c.oid)",
           counter(P + "n_tup_hot_upd", "Rows HOT updated (no separate index update).")),
    Column("pg_stat_get_live_tuples(c.oid)", gauge(P + "n_live_tup", "Estimated number of live rows.")),
    Column("pg_stat_get_dead_tuples(c.oid)", gauge(P + "n_dead_tup", "Estimated number of dead rows.")),
    Column("pg_stat_get_mod_since_analyze(c.oid)",
           gauge(P + "n_mod_since_analyze", "Rows modified since last analyzed.")),
    Column("pg_stat_get_ins_since_vacuum(c.oid)",
           gauge(P + "n_ins_since_vacuum", "Rows inserted since last vacuumed."), 130000),
    _ts("pg_stat_get_last_vacuum_time", "last_vacuum", "manually vacuumed"),
    _ts("pg_stat_get_last_autovacuum_time", "last_autovacuum", "vacuumed by the autovacuum daemon"),
    _ts("pg_stat_get_last_analyze_time", "last_analyze", "manually analyzed"),
    _ts("pg_stat_get_last_autoanalyze_time", "last_autoanalyze", "analyzed by the autovacuum daemon"),
    Column("pg_stat_get_vacuum_count(c.oid)",
           counter(P + "vacuum_count", "Times this table has been manually vacuumed.")),
    Column("pg_stat_get_autovacuum_count(c.oid)",
           counter(P + "autovacuum_count", "Times vacuumed by the autovacuum daemon.")),
    Column("pg_stat_get_analyze_count(c.oid)",
           counter(P + "analyze_count", "Times this table has been manually analyzed.")),
    Column("pg_stat_get_autoanalyze_count(c.oid)",
           counter(P + "autoanalyze_count", "Times analyzed by the autovacuum daemon.")),
)  # fmt: skip
TABLE_SIZE = gauge(
    P + "table_size_bytes", "Disk space of the table with its TOAST, free space and visibility maps."
)
INDEX_SIZE = gauge(P + "index_size_bytes", "Disk space of the indexes of the table (their main forks).")
_KEYS = "c.oid::int8 AS oid, c.total::int8 AS total, c.nspname AS schemaname, c.relname, x.idx"


def _sum_known(sizes: Iterable[int | None]) -> int:
    """Total of the sizes measured; an index dropped meanwhile counts 0."""
    return sum(s for s in sizes if s is not None)


class TableKeys(NamedTuple):
    oid: Sequence[int]
    total: Sequence[int]  # tables in the database before the cap, in every row
    schemaname: Sequence[str]
    relname: Sequence[str]
    idx: Sequence[list[int] | None]  # each table's indexes


class SharedKeys(NamedTuple):
    """TableKeys, and what the statio_tables collector's rows are made of when read in the same statement."""

    oid: Sequence[int]
    total: Sequence[int]
    schemaname: Sequence[str]
    relname: Sequence[str]
    idx: Sequence[list[int] | None]
    stored: Sequence[bool]  # a relation with storage: a row of pg_statio_user_tables
    stored_total: Sequence[int]


class Tables(NamedTuple):
    table: ColumnTable[TableKeys]
    table_sizes: list[int | None]
    index_sizes: list[int]
    stale: int  # relations (tables and indexes) whose size is from an earlier refresh: locked now


class TablesCollector(Collector[Tables, CollectorOptions]):
    name = "tables"
    order = 120
    per_database = True
    default_ttl = 60.0
    source = "pg_stat_user_tables, pg_table_size(), pg_relation_size()"
    families = with_labels(LABELS, *(c.family for c in COLUMNS), TABLE_SIZE, INDEX_SIZE)

    async def fetch(self, session: Session) -> Tables:
        columns = available(COLUMNS, session.server.version_num)
        # the probes of the collectors refreshed after this one (see Collector.probe), read in this statement
        probes = {name: sql for name, sql in session.probes.items() if name != self.name}
        probing = "".join(f', ({sql}) AS "{name}"' for name, sql in probes.items())
        if statio_tables.StatioTablesCollector.name in session.refreshing:
            table, found = await self._fetch_with_statio(session, columns, probing, tuple(probes))
        else:
            table, found = await fetch_table_probing(
                session,
                TableKeys,
                columns,
                self._sql(f"{_KEYS}, {select_list(columns)}{probing}"),
                None,
                tuple(probes),
            )
        for name, value in zip(probes, found or [None] * len(probes), strict=True):
            if value is False:
                session.shared[name] = []  # nothing to read there: that collector runs no statement
        oids, idx = table.keys.oid, table.keys.idx
        # one statement for the sizes of both kinds (see exporter.sizes)
        sizes = await session.sizes.measure_kinds(
            session.datname, session.rows, {"table": oids, "index": [i for ids in idx for i in ids or ()]}
        )
        tables, indexes = sizes["table"], sizes["index"]
        return Tables(
            table,
            [tables.bytes[oid] for oid in oids],
            [_sum_known(indexes.bytes[i] for i in ids or ()) for ids in idx],
            tables.stale + indexes.stale,
        )

    def _sql(self, select: str, joins: str = "") -> str:
        return user_tables_sql(select, joins, self.limits.tables_per_database)

    async def _fetch_with_statio(
        self, session: Session, columns: Sequence[Column], probing: str, probes: tuple[str, ...]
    ) -> tuple[ColumnTable[TableKeys], list[Any] | None]:
        """The user tables with pg_statio's columns too, in one statement; the statio part is left in
        `session.shared` for the statio_tables collector (its rows: the relations with storage)."""
        both = [*columns, *statio_tables.COLUMNS]
        read, found = await fetch_table_probing(
            session,
            SharedKeys,
            both,
            self._sql(
                f"{_KEYS}, {STORED} AS stored, c.stored_total::int8, {select_list(both)}{probing}",
                statio_tables.JOINS,
            ),
            None,
            probes,
        )
        k = read.keys
        own, statio = read.values[: len(columns)], read.values[len(columns) :]
        kept = list(k.stored)
        if not all(kept):
            statio = [tuple(compress(values, kept)) for values in statio]
        statio_keys = statio_tables.StatioKeys(
            tuple(compress(k.stored_total, kept)),
            tuple(compress(k.schemaname, kept)),
            tuple(compress(k.relname, kept)),
        )
        session.shared[statio_tables.StatioTablesCollector.name] = ColumnTable(
            statio_keys, statio_tables.COLUMNS, statio, sum(kept)
        )
        return ColumnTable(
            TableKeys(k.oid, k.total, k.schemaname, k.relname, k.idx), columns, own, read.count
        ), found

    def render(self, out: Exposition, results: Sequence[tuple[str, Tables]]) -> None:
        for datname, (table, table_sizes, index_sizes, stale) in results:
            keys, count = table.keys, table.count
            labels = out.label_columns(LABELS, ([datname] * count, keys.schemaname, keys.relname))
            render_capped(
                out, self.name, datname, labels, table, (TABLE_SIZE, table_sizes), (INDEX_SIZE, index_sizes)
            )
            render_stale(out, self.name, datname, stale)
