"""What the advisor reads of one database's catalog: its tables (rows, size, write rate), their columns and
B-tree indexes, `work_mem`, and whether hypopg is there."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

TABLES_SQL = b"""
SELECT n.nspname, c.relname, greatest(c.reltuples, 0)::float8, pg_total_relation_size(c.oid),
       coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0),
       extract(epoch FROM now() - coalesce(
         (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()),
         pg_postmaster_start_time()))::float8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
"""

COLUMNS_SQL = b"""
SELECT n.nspname, c.relname, a.attname
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
"""

# Valid, non-partial B-tree indexes by their leading plain columns (an expression ends the list).
INDEXES_SQL = b"""
SELECT n.nspname, c.relname,
       array(SELECT a.attname FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY k(attnum, pos)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             ORDER BY k.pos)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
WHERE am.amname = 'btree' AND i.indisvalid AND i.indpred IS NULL
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
"""


@dataclass(frozen=True, slots=True)
class Table:
    schema: str
    name: str
    rows: float  # the planner's estimate (pg_class.reltuples)
    bytes: int  # with its indexes and TOAST
    rows_written: int  # inserted, updated and deleted since the statistics were reset
    seconds: float  # since the statistics were reset

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def writes_per_second(self) -> float:
        return self.rows_written / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Catalog:
    """One database's tables, columns and B-tree indexes, by (schema, table)."""

    tables: dict[tuple[str, str], Table] = field(default_factory=dict)
    columns: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    indexes: dict[tuple[str, str], list[tuple[str | None, ...]]] = field(default_factory=dict)
    work_mem_bytes: int = 4 * 1024 * 1024
    hypopg: str | None = None  # hypopg's version when the extension is created in the database
    hypopg_schema: str = "public"  # quoted: where its functions are
    search_path: list[str] = field(default_factory=lambda: ["public"])  # the session's schemas, in order

    def resolve(self, schema: str | None, name: str) -> Table | None:
        """The table a statement names: schema-qualified, or the first of that name on the session's
        search_path (the one the planner reads), or else the only one of that name."""
        if schema is not None:
            return self.tables.get((schema, name))
        for searched in self.search_path:
            if (searched, name) in self.tables:
                return self.tables[(searched, name)]
        matches = [t for (s, n), t in self.tables.items() if n == name]
        return matches[0] if len(matches) == 1 else None

    def write_heavy(self, table: Table, min_rate: float) -> bool:
        """Rows written since the statistics were reset at least twice the table's rows (its initial load
        counts once), at `min_rate` rows a second or more: each index slows every one of those writes."""
        return table.rows_written >= 2 * max(table.rows, 1) and table.writes_per_second >= min_rate


async def read_catalog(conn: psycopg.AsyncConnection[Any]) -> Catalog:
    """The catalog of the session's database."""
    catalog = Catalog()
    cur = await conn.execute(TABLES_SQL)
    for schema, name, rows, size, written, seconds in await cur.fetchall():
        catalog.tables[(schema, name)] = Table(
            schema, name, float(rows), int(size), int(written), float(seconds or 0.0)
        )
    cur = await conn.execute(COLUMNS_SQL)
    for schema, name, column in await cur.fetchall():
        catalog.columns.setdefault((schema, name), set()).add(column)
    cur = await conn.execute(INDEXES_SQL)
    for schema, name, columns in await cur.fetchall():
        catalog.indexes.setdefault((schema, name), []).append(tuple(columns))
    cur = await conn.execute(
        b"SELECT pg_size_bytes(current_setting('work_mem')),"
        b" e.extversion, quote_ident(n.nspname), current_schemas(false)"
        b" FROM (SELECT 1) one LEFT JOIN pg_extension e ON e.extname = 'hypopg'"
        b" LEFT JOIN pg_namespace n ON n.oid = e.extnamespace"
    )
    row = await cur.fetchone()
    assert row is not None
    catalog.work_mem_bytes, catalog.hypopg, catalog.hypopg_schema = int(row[0]), row[1], row[2] or "public"
    catalog.search_path = list(row[3])
    return catalog
