"""pg_statio_user_indexes in every database: buffer cache hits and disk reads per index; capped, largest first."""

from __future__ import annotations

from exporter.collectors.base import Column, counter
from exporter.collectors.relations import IndexKeys, PartnerCollector, user_indexes_sql

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


class StatioIndexesCollector(PartnerCollector[IndexKeys]):
    name = "statio_indexes"
    source = "pg_statio_user_indexes (its definition, sharing the indexes collector's read)"
    labels = LABELS
    keys = IndexKeys
    columns = COLUMNS

    def statement(self, select: str) -> str:
        return user_indexes_sql(select, self.limits.indexes_per_database)
