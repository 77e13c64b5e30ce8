"""pg_stat_user_tables in every database, with table and index sizes; capped per database, largest first."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from exporter.collectors.base import (
    Collector,
    Column,
    available,
    cap_clause,
    counter,
    gauge,
    render_cut,
    render_table,
    select_list,
    with_labels,
)
from exporter.db import Session
from exporter.exposition import Exposition

P = "pg_stat_user_tables_"
LABELS = ("datname", "schemaname", "relname")


def _ts(column: str, what: str) -> Column:
    return Column(
        f"extract(epoch FROM {column})",
        gauge(P + column, f"Last time this table was {what} (Unix time); absent if never."),
        cast="float8",
    )


COLUMNS = (
    Column("seq_scan", counter(P + "seq_scan", "Sequential scans initiated on this table.")),
    Column("seq_tup_read", counter(P + "seq_tup_read", "Live rows fetched by sequential scans.")),
    Column("idx_scan", counter(P + "idx_scan", "Index scans initiated on this table.")),
    Column("idx_tup_fetch", counter(P + "idx_tup_fetch", "Live rows fetched by index scans.")),
    Column("n_tup_ins", counter(P + "n_tup_ins", "Rows inserted.")),
    Column("n_tup_upd", counter(P + "n_tup_upd", "Rows updated (including HOT updates).")),
    Column("n_tup_del", counter(P + "n_tup_del", "Rows deleted.")),
    Column("n_tup_hot_upd", counter(P + "n_tup_hot_upd", "Rows HOT updated (no separate index update).")),
    Column("n_live_tup", gauge(P + "n_live_tup", "Estimated number of live rows.")),
    Column("n_dead_tup", gauge(P + "n_dead_tup", "Estimated number of dead rows.")),
    Column("n_mod_since_analyze", gauge(P + "n_mod_since_analyze", "Rows modified since last analyzed.")),
    Column(
        "n_ins_since_vacuum", gauge(P + "n_ins_since_vacuum", "Rows inserted since last vacuumed."), 130000
    ),
    _ts("last_vacuum", "manually vacuumed"),
    _ts("last_autovacuum", "vacuumed by the autovacuum daemon"),
    _ts("last_analyze", "manually analyzed"),
    _ts("last_autoanalyze", "analyzed by the autovacuum daemon"),
    Column("vacuum_count", counter(P + "vacuum_count", "Times this table has been manually vacuumed.")),
    Column("autovacuum_count", counter(P + "autovacuum_count", "Times vacuumed by the autovacuum daemon.")),
    Column("analyze_count", counter(P + "analyze_count", "Times this table has been manually analyzed.")),
    Column("autoanalyze_count", counter(P + "autoanalyze_count", "Times analyzed by the autovacuum daemon.")),
)
TABLE_SIZE = gauge(
    P + "table_size_bytes", "Disk space of the table with its TOAST, free space and visibility maps."
)
INDEX_SIZE = gauge(P + "index_size_bytes", "Disk space of all the indexes of the table.")
SIZES = (Column("", TABLE_SIZE), Column("", INDEX_SIZE))


def _sum_known(sizes: Iterable[int | None]) -> int:
    """Total of the sizes measured; an index dropped meanwhile counts 0."""
    return sum(s for s in sizes if s is not None)


class TablesCollector(Collector):
    name = "tables"
    per_database = True
    default_ttl = 60.0
    source = "pg_stat_user_tables, pg_table_size()"
    families = with_labels(LABELS, *(c.family for c in COLUMNS + SIZES))

    async def fetch(self, session: Session) -> Any:
        columns = available(COLUMNS, session.server.version_num)
        rows = await session.rows(
            "SELECT s.relid::int8, count(*) OVER ()::int8, s.schemaname, s.relname, "
            "ARRAY(SELECT i.indexrelid::int8 FROM pg_index i WHERE i.indrelid = s.relid), "
            f"{select_list(columns)} "
            "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            f"ORDER BY c.relpages DESC, s.relid {cap_clause(self.limits.tables_per_database)}"
        )
        oids = [r[0] for r in rows]
        oids += [i for r in rows for i in r[4]]
        sizes = await session.relation_sizes(oids)
        size_rows = [(sizes[r[0]], _sum_known(sizes[i] for i in r[4])) for r in rows]
        total = rows[0][1] if rows else 0
        return columns, rows, size_rows, total

    def render(self, out: Exposition, results: Sequence[tuple[str, Any]]) -> None:
        for datname, (columns, rows, sizes, total) in results:
            labels = out.label_rows(LABELS, ((datname, r[2], r[3]) for r in rows))
            render_table(out, labels, rows, columns, 5)
            render_table(out, labels, sizes, SIZES, 0)
            render_cut(out, self.name, datname, total, len(rows))
