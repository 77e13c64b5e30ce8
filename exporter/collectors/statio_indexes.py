"""pg_statio_user_indexes in every database: buffer cache hits and disk reads per index; capped, largest first."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.collectors.base import (
    Collector,
    Column,
    ColumnTable,
    counter,
    fetch_table,
    render_capped,
    select_list,
    with_labels,
)
from exporter.collectors.options import CollectorOptions
from exporter.collectors.relations import INDEX_KEYS, IndexKeys, take_shared, user_indexes_sql
from exporter.db import Session
from exporter.exposition import Exposition

P = "pg_statio_user_indexes_"
LABELS = ("datname", "schemaname", "relname", "indexrelname")
# pg_statio_user_indexes' definition; postgres_exporter's names (its statio_user_indexes collector keeps `blks`
# and adds `_total`)
COLUMNS = (
    Column(
        "pg_stat_get_blocks_fetched(i.indexrelid) - pg_stat_get_blocks_hit(i.indexrelid)",
        counter(P + "idx_blks_read_total", "Disk blocks read from this index."),
    ),
    Column(
        "pg_stat_get_blocks_hit(i.indexrelid)",
        counter(P + "idx_blks_hit_total", "Buffer cache hits in this index."),
    ),
)


class StatioIndexesCollector(Collector[ColumnTable[IndexKeys], CollectorOptions]):
    name = "statio_indexes"
    per_database = True
    default_ttl = 60.0
    source = "pg_statio_user_indexes (its definition, sharing the indexes collector's read)"
    families = with_labels(LABELS, *(c.family for c in COLUMNS))

    async def fetch(self, session: Session) -> ColumnTable[IndexKeys]:
        shared = take_shared(session, self.name)  # read by the indexes collector in the same visit
        if shared is not None:
            return shared
        return await fetch_table(
            session,
            IndexKeys,
            COLUMNS,
            user_indexes_sql(f"{INDEX_KEYS}, {select_list(COLUMNS)}", self.limits.indexes_per_database),
        )

    def render(self, out: Exposition, results: Sequence[tuple[str, ColumnTable[IndexKeys]]]) -> None:
        for datname, table in results:
            keys = table.keys
            labels = out.label_columns(
                LABELS, ([datname] * table.count, keys.schemaname, keys.relname, keys.indexrelname)
            )
            render_capped(out, self.name, datname, labels, table)
