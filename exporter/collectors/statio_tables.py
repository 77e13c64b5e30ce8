"""pg_statio_user_tables in every database: buffer cache hits and disk reads per table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from exporter.collectors.base import Column, counter
from exporter.collectors.relations import PartnerCollector, user_tables_sql

P = "pg_statio_user_tables_"
LABELS = ("datname", "schemaname", "relname")
_WHAT = {"heap": "the table", "idx": "all indexes of the table", "toast": "its TOAST table",
         "tidx": "its TOAST table's indexes"}  # fmt: skip
# pg_statio_user_tables' definition, on the relations of the tables collector's query (their common part,
# read once when both are refreshed together): the table, its indexes, its TOAST table and the TOAST index.
_TOAST = "nullif(c.reltoastrelid, 0)"
_EXPR = {
    ("heap", "read"): "pg_stat_get_blocks_fetched(c.oid) - pg_stat_get_blocks_hit(c.oid)",
    ("heap", "hit"): "pg_stat_get_blocks_hit(c.oid)",
    ("idx", "read"): "x.read",
    ("idx", "hit"): "x.hit",
    ("toast", "read"): f"pg_stat_get_blocks_fetched({_TOAST}) - pg_stat_get_blocks_hit({_TOAST})",
    ("toast", "hit"): f"pg_stat_get_blocks_hit({_TOAST})",
    ("tidx", "read"): "st.read",
    ("tidx", "hit"): "st.hit",
}
# The join the TOAST index's columns read, after the user tables' `x` (the table's indexes' sums).
JOINS = """LEFT JOIN (
  SELECT indrelid, sum(pg_stat_get_blocks_fetched(indexrelid) - pg_stat_get_blocks_hit(indexrelid))::int8 AS read,
         sum(pg_stat_get_blocks_hit(indexrelid))::int8 AS hit
  FROM pg_index WHERE indrelid IN (SELECT reltoastrelid FROM user_tables) GROUP BY indrelid
) st ON st.indrelid = c.reltoastrelid
"""
COLUMNS = tuple(
    Column(
        _EXPR[part, kind],
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


class StatioTablesCollector(PartnerCollector[StatioKeys]):
    name = "statio_tables"
    order = 130
    source = "pg_statio_user_tables (its definition, sharing the tables collector's read)"
    labels = LABELS
    keys = StatioKeys
    columns = COLUMNS

    def statement(self, select: str) -> str:
        return user_tables_sql(
            f"c.total::int8 AS total, c.nspname AS schemaname, c.relname, {select}",
            JOINS,
            self.limits.tables_per_database,
            relkinds="'r', 'm'",
        )
