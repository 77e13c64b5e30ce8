"""pg_stat_user_indexes in every database: scans, size, and an unused flag; capped, largest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors import statio_indexes
from exporter.collectors.base import (
    Collector,
    Column,
    ColumnTable,
    counter,
    gauge,
    render_capped,
    with_labels,
)
from exporter.collectors.options import CollectorOptions
from exporter.collectors.relations import IndexKeys, fetch_with, user_indexes_sql
from exporter.db import Session
from exporter.exposition import Exposition
from exporter.sizes import render_stale

P = "pg_stat_user_indexes_"
LABELS = ("datname", "schemaname", "relname", "indexrelname")
COLUMNS = (
    Column("pg_stat_get_numscans(i.indexrelid)", counter(P + "idx_scan", "Index scans initiated on this index.")),
    Column("pg_stat_get_tuples_returned(i.indexrelid)",
           counter(P + "idx_tup_read", "Index entries returned by scans on this index.")),
    Column("pg_stat_get_tuples_fetched(i.indexrelid)",
           counter(P + "idx_tup_fetch", "Live table rows fetched by simple index scans.")),
    Column("pg_stat_get_numscans(i.indexrelid) = 0 AND NOT (i.indisunique OR i.indisprimary OR i.indisexclusion)",
           gauge("pg_index_unused", "1 when the index was never scanned and backs no unique, primary key "
                 "or exclusion constraint (a candidate to drop), else 0."), cast="int4"),
)  # fmt: skip
SIZE = gauge("pg_index_size_bytes", "Disk space of the index (its main fork), in bytes.")


class Indexes(NamedTuple):
    table: ColumnTable[IndexKeys]
    sizes: list[int | None]
    stale: int  # indexes whose size is from an earlier refresh: locked now


class IndexesCollector(Collector[Indexes, CollectorOptions]):
    name = "indexes"
    order = 140
    per_database = True
    default_ttl = 60.0
    source = "pg_stat_user_indexes, pg_index, pg_relation_size()"
    families = with_labels(LABELS, *(c.family for c in COLUMNS), SIZE)

    async def fetch(self, session: Session) -> Indexes:
        # pg_stat_user_indexes' definition, with pg_index joined once rather than twice
        table = await fetch_with(
            session,
            IndexKeys,
            COLUMNS,
            statio_indexes.StatioIndexesCollector.name,
            statio_indexes.COLUMNS,
            lambda select: user_indexes_sql(select, self.limits.indexes_per_database),
        )
        oids = table.keys.oid
        sizes = await session.index_sizes(oids)
        return Indexes(table, [sizes.bytes[oid] for oid in oids], sizes.stale)

    def render(self, out: Exposition, results: Sequence[tuple[str, Indexes]]) -> None:
        for datname, (table, sizes, stale) in results:
            keys, count = table.keys, table.count
            labels = out.label_columns(
                LABELS, ([datname] * count, keys.schemaname, keys.relname, keys.indexrelname)
            )
            render_capped(out, self.name, datname, labels, table, (SIZE, sizes))
            render_stale(out, self.name, datname, stale)
