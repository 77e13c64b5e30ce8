"""pg_stat_user_indexes in every database: scans, size, and an unused flag; capped, largest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporter.collectors.base import (
    Collector,
    Column,
    cap_clause,
    counter,
    gauge,
    render_cut,
    render_table,
    with_labels,
)
from exporter.db import Session
from exporter.exposition import Exposition

P = "pg_stat_user_indexes_"
LABELS = ("datname", "schemaname", "relname", "indexrelname")
COLUMNS = (
    Column("idx_scan", counter(P + "idx_scan", "Index scans initiated on this index.")),
    Column("idx_tup_read", counter(P + "idx_tup_read", "Index entries returned by scans on this index.")),
    Column("idx_tup_fetch", counter(P + "idx_tup_fetch", "Live table rows fetched by simple index scans.")),
    Column("", gauge("pg_index_unused", "1 when the index was never scanned and backs no unique, primary key "
                     "or exclusion constraint (a candidate to drop), else 0.")),
)  # fmt: skip
SIZE = (Column("", gauge("pg_index_size_bytes", "Disk space of the index (its main fork), in bytes.")),)


class IndexesCollector(Collector):
    name = "indexes"
    per_database = True
    default_ttl = 60.0
    source = "pg_stat_user_indexes, pg_index, pg_relation_size()"
    families = with_labels(LABELS, *(c.family for c in COLUMNS + SIZE))

    async def fetch(self, session: Session) -> Any:
        # pg_stat_user_indexes' definition, with pg_index joined once rather than twice
        rows = await session.rows(
            "SELECT i.indexrelid::int8, count(*) OVER ()::int8, n.nspname, t.relname, c.relname, "
            "pg_stat_get_numscans(i.indexrelid), pg_stat_get_tuples_returned(i.indexrelid), "
            "pg_stat_get_tuples_fetched(i.indexrelid), "
            "(pg_stat_get_numscans(i.indexrelid) = 0 "
            " AND NOT (i.indisunique OR i.indisprimary OR i.indisexclusion))::int4 "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE t.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname !~ '^pg_toast' "
            f"ORDER BY c.relpages DESC, i.indexrelid {cap_clause(self.limits.indexes_per_database)}"
        )
        sizes = await session.index_sizes([r[0] for r in rows])
        return rows, [(sizes[r[0]],) for r in rows], rows[0][1] if rows else 0

    def render(self, out: Exposition, results: Sequence[tuple[str, Any]]) -> None:
        for datname, (rows, sizes, total) in results:
            labels = out.label_rows(LABELS, ((datname, r[2], r[3], r[4]) for r in rows))
            render_table(out, labels, rows, COLUMNS, 5)
            render_table(out, labels, sizes, SIZE, 0)
            render_cut(out, self.name, datname, total, len(rows))
