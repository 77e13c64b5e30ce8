"""What the report reads from the target itself, where Prometheus has no series: duplicate indexes,
statistics age, the server version and the statements' text (which the exporter exports only with
`collectors.statements.include_query`). Read-only: the session is `READ ONLY`, and only catalogs and
statistics views are read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

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


# pg_stat_statements lives where CREATE EXTENSION put it (some schema of the target's database, or nowhere);
# its rows cover every database. The text is cut short here and made one line by `one_line`.
STATEMENTS_SCHEMA = """
SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""
STATEMENTS = """
SELECT d.datname, r.rolname, s.queryid::text, left(min(s.query), %(length)s)
FROM {view} s
JOIN pg_database d ON d.oid = s.dbid
JOIN pg_roles r ON r.oid = s.userid
WHERE s.queryid IS NOT NULL
GROUP BY d.datname, r.rolname, s.queryid
ORDER BY sum(s.total_exec_time) DESC
LIMIT 1000
"""
QUERY_TEXT_LENGTH = 200
_WHITESPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# pg_stat_statements replaces the constants of queries by $1, $2, but keeps those of utility statements as
# written: `CREATE ROLE app PASSWORD 'secret'`, `OPTIONS (password 'secret')`. Every string literal is masked.
_STRING_LITERAL = re.compile(r"(?:[eE]|[uU]&)?'(?:''|\\.|[^'])*'?")


def statement_text(text: str) -> str:
    """A statement's text as a report shows it: its string literals masked, one line (every run of
    whitespace one space, control characters gone); the report's HTML and Markdown escape the rest."""
    masked = _STRING_LITERAL.sub("'***'", text)
    return _CONTROL.sub("", _WHITESPACE.sub(" ", masked)).strip()


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


StatementKey = tuple[str, ...]  # (datname, user, queryid): the labels the exporter gives a statement


@dataclass(frozen=True)
class Catalog:
    database: str
    server_version: str
    duplicates: list[DuplicateIndexes]
    statistics: list[TableStatistics]
    # the statements' text from pg_stat_statements; None: not installed in this database, or not readable
    statements: dict[StatementKey, str] | None = None


async def read_statements(conn: psycopg.AsyncConnection[Any]) -> dict[StatementKey, str] | None:
    """Each statement's text (cut to QUERY_TEXT_LENGTH, one line), or None without pg_stat_statements here.
    A role without pg_read_all_stats sees `<insufficient privilege>` for others' statements: left out."""
    found = await (await conn.execute(STATEMENTS_SCHEMA)).fetchone()
    if found is None:
        return None
    view = sql.Identifier(str(found[0]), "pg_stat_statements")
    try:
        query = sql.SQL(STATEMENTS).format(view=view)
        rows = await (await conn.execute(query, {"length": QUERY_TEXT_LENGTH})).fetchall()
    except psycopg.Error:  # the view exists but cannot be read (shared_preload_libraries, privileges)
        return None
    return {
        (str(r[0]), str(r[1]), str(r[2])): statement_text(str(r[3]))
        for r in rows
        if r[3] and not str(r[3]).startswith("<insufficient privilege>")
    }


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
    return Catalog(database, version, dups, stats, await read_statements(conn))


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
