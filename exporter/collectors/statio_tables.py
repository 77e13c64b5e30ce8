"""pg_statio_user_tables in every database: buffer cache hits and disk reads per table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exporter.collectors.base import (
    Collector,
    Column,
    cap_clause,
    counter,
    render_cut,
    render_table,
    select_list,
    with_labels,
)
from exporter.db import Session
from exporter.exposition import Exposition

P = "pg_statio_user_tables_"
LABELS = ("datname", "schemaname", "relname")
_WHAT = {"heap": "the table", "idx": "all indexes of the table", "toast": "its TOAST table",
         "tidx": "its TOAST table's indexes"}  # fmt: skip
COLUMNS = tuple(
    Column(
        f"{part}_blks_{kind}",
        counter(
            f"{P}{part}_blks_{kind}",
            f"Disk blocks {'read from' if kind == 'read' else 'found in the buffer cache for'} {what}.",
        ),
    )
    for part, what in _WHAT.items()
    for kind in ("read", "hit")
)


class StatioTablesCollector(Collector):
    name = "statio_tables"
    per_database = True
    default_ttl = 60.0
    source = "pg_statio_user_tables"
    families = with_labels(LABELS, *(c.family for c in COLUMNS))

    async def fetch(self, session: Session) -> Any:
        rows = await session.rows(
            f"SELECT count(*) OVER ()::int8, s.schemaname, s.relname, {select_list(COLUMNS)} "
            "FROM pg_statio_user_tables s JOIN pg_class c ON c.oid = s.relid "
            f"ORDER BY c.relpages DESC, s.relid {cap_clause(self.limits.tables_per_database)}"
        )
        return rows, rows[0][0] if rows else 0

    def render(self, out: Exposition, results: Sequence[tuple[str, Any]]) -> None:
        for datname, (rows, total) in results:
            labels = out.label_rows(LABELS, ((datname, r[1], r[2]) for r in rows))
            render_table(out, labels, rows, COLUMNS, 3)
            render_cut(out, self.name, datname, total, len(rows))
