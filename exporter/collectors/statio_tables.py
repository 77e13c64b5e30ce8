"""pg_statio_user_tables in every database: buffer cache hits and disk reads per table."""

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
    render_cut,
    render_table,
    select_list,
    with_labels,
)
from exporter.collectors.options import CollectorOptions
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
            f"{P}{part}_blocks_{kind}",  # postgres_exporter's names; the view says _blks_
            f"Disk blocks {'read from' if kind == 'read' else 'found in the buffer cache for'} {what}.",
        ),
    )
    for part, what in _WHAT.items()
    for kind in ("read", "hit")
)


class StatioKeys(NamedTuple):
    total: Sequence[int]  # tables in the database before the cap, in every row
    schemaname: Sequence[str]
    relname: Sequence[str]


class StatioTablesCollector(Collector[ColumnTable[StatioKeys], CollectorOptions]):
    name = "statio_tables"
    order = 130
    per_database = True
    default_ttl = 60.0
    source = "pg_statio_user_tables"
    families = with_labels(LABELS, *(c.family for c in COLUMNS))

    async def fetch(self, session: Session) -> ColumnTable[StatioKeys]:
        return await fetch_table(
            session,
            StatioKeys,
            COLUMNS,
            f"SELECT count(*) OVER ()::int8 AS total, s.schemaname, s.relname, {select_list(COLUMNS)} "
            "FROM pg_statio_user_tables s JOIN pg_class c ON c.oid = s.relid "
            f"ORDER BY c.relpages DESC, s.relid {cap_clause(self.limits.tables_per_database)}",
        )

    def render(self, out: Exposition, results: Sequence[tuple[str, ColumnTable[StatioKeys]]]) -> None:
        for datname, table in results:
            keys = table.keys
            labels = out.label_columns(LABELS, ([datname] * table.count, keys.schemaname, keys.relname))
            render_table(out, labels, table)
            render_cut(out, self.name, datname, keys.total[0] if table.count else 0, table.count)
