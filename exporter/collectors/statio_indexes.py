"""pg_statio_user_indexes in every database: buffer cache hits and disk reads per index; capped, largest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import (
    Collector,
    Column,
    ColumnTable,
    cap_clause,
    counter,
    fetch_table,
    render_capped,
    select_list,
    with_labels,
)
from exporter.collectors.options import CollectorOptions
from exporter.db import Session
from exporter.exposition import Exposition

P = "pg_statio_user_indexes_"
LABELS = ("datname", "schemaname", "relname", "indexrelname")
# postgres_exporter's names (its statio_user_indexes collector keeps `blks` and adds `_total`)
COLUMNS = (
    Column("s.idx_blks_read", counter(P + "idx_blks_read_total", "Disk blocks read from this index.")),
    Column("s.idx_blks_hit", counter(P + "idx_blks_hit_total", "Buffer cache hits in this index.")),
)


class StatioIndexKeys(NamedTuple):
    total: Sequence[int]  # indexes in the database before the cap, in every row
    schemaname: Sequence[str]
    relname: Sequence[str]
    indexrelname: Sequence[str]


class StatioIndexesCollector(Collector[ColumnTable[StatioIndexKeys], CollectorOptions]):
    name = "statio_indexes"
    per_database = True
    default_ttl = 60.0
    source = "pg_statio_user_indexes"
    families = with_labels(LABELS, *(c.family for c in COLUMNS))

    async def fetch(self, session: Session) -> ColumnTable[StatioIndexKeys]:
        return await fetch_table(
            session,
            StatioIndexKeys,
            COLUMNS,
            "SELECT count(*) OVER ()::int8 AS total, s.schemaname, s.relname, s.indexrelname, "
            f"{select_list(COLUMNS)} FROM pg_statio_user_indexes s JOIN pg_class c ON c.oid = s.indexrelid "
            f"ORDER BY c.relpages DESC, s.indexrelid {cap_clause(self.limits.indexes_per_database)}",
        )

    def render(self, out: Exposition, results: Sequence[tuple[str, ColumnTable[StatioIndexKeys]]]) -> None:
        for datname, table in results:
            keys = table.keys
            labels = out.label_columns(
                LABELS, ([datname] * table.count, keys.schemaname, keys.relname, keys.indexrelname)
            )
            render_capped(out, self.name, datname, labels, table)
