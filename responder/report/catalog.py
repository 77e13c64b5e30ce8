"""What the report reads from the target itself, where Prometheus has no series: duplicate indexes,
statistics age and the server version. Read-only: the session is `READ ONLY`, and only catalogs are read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from pgwarden import postgres
from pgwarden.credentials import Credentials

# Starts with the responder's own application_name, so terminate_queries never signals it.
APPLICATION_NAME = "pgwarden-responder-report"

DUPLICATE_INDEXES = """
SELECT n.nspname, t.relname, array_agg(i.relname::text ORDER BY i.relname), sum(pg_relation_size(x.indexrelid))
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
GROUP BY n.nspname, t.relname, x.indrelid, x.indkey::text, x.indclass::text,
         coalesce(pg_get_expr(x.indexprs, x.indrelid), ''), coalesce(pg_get_expr(x.indpred, x.indrelid), '')
HAVING count(*) > 1
ORDER BY 4 DESC
LIMIT 50
"""

STATISTICS = """
SELECT schemaname, relname, extract(epoch FROM greatest(last_analyze, last_autoanalyze))::float8,
       n_mod_since_analyze, n_live_tup
FROM pg_stat_user_tables
ORDER BY n_mod_since_analyze DESC
LIMIT 200
"""


@dataclass(frozen=True)
class DuplicateIndexes:
    table: str  # schema.table
    indexes: tuple[str, ...]
    bytes: int


@dataclass(frozen=True)
class TableStatistics:
    table: str
    analyzed_at: float | None  # None: never analyzed
    modified_since: int
    live_rows: int


@dataclass(frozen=True)
class Catalog:
    database: str
    server_version: str
    duplicates: list[DuplicateIndexes]
    statistics: list[TableStatistics]


async def read_catalog(conn: psycopg.AsyncConnection[Any]) -> Catalog:
    """The facts of the connection's database, in a read-only transaction."""
    await conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    await conn.execute("SET statement_timeout = '30s'")
    database = str((await (await conn.execute("SELECT current_database()")).fetchone() or ("",))[0])
    version = str((await (await conn.execute("SHOW server_version")).fetchone() or ("",))[0])
    dups = [
        DuplicateIndexes(f"{r[0]}.{r[1]}", tuple(r[2]), int(r[3]))
        for r in await (await conn.execute(DUPLICATE_INDEXES)).fetchall()
    ]
    stats = [
        TableStatistics(f"{r[0]}.{r[1]}", None if r[2] is None else float(r[2]), int(r[3]), int(r[4]))
        for r in await (await conn.execute(STATISTICS)).fetchall()
    ]
    return Catalog(database, version, dups, stats)


async def catalog_at(
    conninfo: str, connect_timeout: float = 5.0, credentials: Credentials | None = None
) -> Catalog:
    """`read_catalog` on a session of its own; psycopg.Error when the target cannot be read."""
    options = postgres.SessionOptions(APPLICATION_NAME, connect_timeout)
    conn = await postgres.connect(conninfo, options, credentials)
    try:
        return await read_catalog(conn)
    finally:
        await conn.close()
