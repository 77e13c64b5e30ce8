"""What `migrate run` does once the command is done: indexes it left INVALID (a failed `CREATE INDEX
CONCURRENTLY`) dropped with `DROP INDEX CONCURRENTLY`, and the tables it touched ANALYZEd, each through the gate.

Only the migration's own traces: the catalogue is read before the first attempt (`Catalogue.read`) and after
the last, so an index that was invalid before, or one another session is building right now, is left alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from responder.effects import EffectGate

# Every user table, with a fingerprint of its definition (its pg_class and pg_attribute rows' versions, its
# storage and its indexes): a table whose fingerprint changed, or a new one, was touched by the migration.
TABLES = """
SELECT n.nspname, c.relname, md5(concat_ws('|', c.xmin::text, c.relfilenode::text,
  (SELECT string_agg(a.attname || ':' || a.xmin::text, ',' ORDER BY a.attnum)
   FROM pg_attribute a WHERE a.attrelid = c.oid),
  (SELECT string_agg(i.indexrelid::text || ':' || i.indisvalid::text, ',' ORDER BY i.indexrelid)
   FROM pg_index i WHERE i.indrelid = c.oid)))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'
"""
INVALID = """
SELECT n.nspname, c.relname, i.indexrelid::bigint
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
  AND i.indexrelid NOT IN (SELECT index_relid FROM pg_stat_progress_create_index WHERE index_relid IS NOT NULL)
"""

Name = tuple[str, str]  # schema, name


@dataclass(frozen=True)
class Catalogue:
    tables: dict[Name, str]
    invalid: frozenset[int]  # index oids

    @classmethod
    async def read(cls, conn: psycopg.AsyncConnection[Any]) -> Catalogue:
        tables = {(s, t): str(f) for s, t, f in await (await conn.execute(TABLES)).fetchall()}
        invalid = await (await conn.execute(INVALID)).fetchall()
        return cls(tables, frozenset(int(oid) for _, _, oid in invalid))


def qualified(name: Name) -> str:
    return f"{name[0]}.{name[1]}"


async def clean_up(
    gate: EffectGate, conn: psycopg.AsyncConnection[Any], before: Catalogue
) -> dict[str, list[str]]:
    """Drop the invalid indexes the migration left, ANALYZE the tables it touched: what was done, by name."""
    dropped = await drop_invalid(gate, conn, before)
    after = await Catalogue.read(conn)
    touched = sorted(
        name for name, fingerprint in after.tables.items() if before.tables.get(name) != fingerprint
    )
    for name in touched:
        statement = sql.SQL("ANALYZE {}").format(sql.Identifier(*name))
        await gate.postgres(statement.as_string(conn), {"table": qualified(name)}, _execute(conn, statement))
    return {"invalid_indexes_dropped": dropped, "analyzed": [qualified(n) for n in touched]}


async def drop_invalid(gate: EffectGate, conn: psycopg.AsyncConnection[Any], before: Catalogue) -> list[str]:
    """Drop the invalid indexes the migration left (not those invalid before it), by name. Also run before a
    retry: a failed `CREATE INDEX CONCURRENTLY [IF NOT EXISTS]` leaves its INVALID index behind, which the retry
    would find existing (skip it, or fail on it every time) instead of building it."""
    dropped: list[str] = []
    for schema, index, oid in await (await conn.execute(INVALID)).fetchall():
        if int(oid) in before.invalid:
            continue
        statement = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, index))
        text = statement.as_string(conn)
        await gate.postgres(text, {"index": f"{schema}.{index}", "invalid": True}, _execute(conn, statement))
        dropped.append(f"{schema}.{index}")
    return dropped


def _execute(conn: psycopg.AsyncConnection[Any], statement: sql.Composed) -> Any:
    async def run() -> None:
        await conn.execute(statement)

    return run
