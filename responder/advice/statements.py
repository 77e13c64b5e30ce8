"""The statements worth planning: the top of `pg_stat_statements` by total time, per database, kept only when
PostgreSQL's own parser (pglast) says the text is one SELECT, UPDATE, DELETE or INSERT ... SELECT.

Every text is treated as hostile: it is parsed here, and planned only inside a read-only transaction over the
extended protocol (`plans`), which refuses a second statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from pglast import ast, parse_sql
from pglast.parser import ParseError

_MODIFYING = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)

# Each database's top statements by total execution time; `many` bounds what is read (the caller keeps the top
# `top` that may be planned). Rows of several users of one queryid are summed.
TOP_SQL = """
SELECT queryid, datname, calls, total_ms, query FROM (
  SELECT s.queryid, d.datname, sum(s.calls)::bigint AS calls, sum(s.total_exec_time) AS total_ms,
         min(s.query) AS query,
         row_number() OVER (PARTITION BY d.datname ORDER BY sum(s.total_exec_time) DESC) AS rank
  FROM {schema}.pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
  WHERE s.queryid IS NOT NULL AND s.calls > 0 {toplevel}
  GROUP BY s.queryid, d.datname
) ranked WHERE rank <= %(many)s ORDER BY datname, total_ms DESC
"""


@dataclass(frozen=True, slots=True)
class Statement:
    """One normalized statement of `pg_stat_statements` (constants replaced by $1, $2, ...)."""

    queryid: int
    database: str
    calls: int
    total_ms: float
    text: str
    params: int = 0  # the highest $n: how many placeholder values a generic plan needs

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0


@dataclass(frozen=True, slots=True)
class Skipped:
    """A top statement that is not planned, and why."""

    statement: Statement
    reason: str
    other_kind: bool = False  # not a SELECT, UPDATE, DELETE or INSERT ... SELECT: counted, not listed


OTHER_KIND = "only SELECT, UPDATE, DELETE and INSERT ... SELECT are planned"


def walk(node: Any) -> Iterator[ast.Node]:
    """Every node of a pglast tree, depth first (without recursion: a hostile text may nest thousands deep)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Node):
            yield item
            stack.extend(
                reversed([getattr(item, slot, None) for slot in getattr(type(item), "__slots__", ())])
            )
        elif isinstance(item, tuple | list):
            stack.extend(reversed(item))


def parse_one(text: str) -> ast.Node:
    """The single statement of `text`; ValueError (with the reason) for anything else."""
    try:
        parsed = parse_sql(text)
    except ParseError as exc:
        raise ValueError(f"not parsed: {exc}") from None
    except RecursionError:
        raise ValueError("not parsed: nested too deeply") from None
    if len(parsed) != 1 or parsed[0].stmt is None:
        raise ValueError(f"{len(parsed)} statements in one text: only one is planned")
    node: ast.Node = parsed[0].stmt
    return node


def refusal(text: str) -> str | None:
    """Why `text` must not be planned, or None: one SELECT (no SELECT INTO, no data-modifying WITH), UPDATE,
    DELETE or INSERT ... SELECT, as PostgreSQL parses it."""
    if text.startswith("<insufficient privilege>"):
        return "text hidden: the role lacks pg_read_all_stats"
    try:
        node = parse_one(text)
    except ValueError as exc:
        return str(exc)
    if isinstance(node, ast.SelectStmt):
        if node.intoClause is not None:
            return "SELECT INTO creates a table"
        if any(isinstance(n, _MODIFYING) for n in walk(node)):
            return "a SELECT with a data-modifying WITH writes"
        return None
    if isinstance(node, ast.UpdateStmt | ast.DeleteStmt):
        return None
    if isinstance(node, ast.InsertStmt):
        source = node.selectStmt
        if isinstance(source, ast.SelectStmt) and not source.valuesLists:
            return None
        return "INSERT ... VALUES: nothing to index"
    return f"{type(node).__name__}: {OTHER_KIND}"


def placeholders(text: str) -> int:
    """The highest $n of a statement that parses (0 when none)."""
    numbers = [n.number or 0 for n in walk(parse_one(text)) if isinstance(n, ast.ParamRef)]
    return max(numbers, default=0)


async def stat_statements_schema(conn: psycopg.AsyncConnection[Any]) -> str | None:
    """The schema of the pg_stat_statements extension in the session's database, or None."""
    cur = await conn.execute(
        b"SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        b" WHERE e.extname = 'pg_stat_statements'"
    )
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def top_statements(
    conn: psycopg.AsyncConnection[Any], schema: str, top: int, databases: set[str] | None = None
) -> tuple[dict[str, list[Statement]], list[Skipped]]:
    """Per database, the `top` statements that may be planned (by total time), and the top ones skipped."""
    toplevel = ""
    if conn.info.server_version >= 140000:
        toplevel = "AND s.toplevel"  # a function's inner statements are counted in its caller's
    query = TOP_SQL.format(schema=schema, toplevel=toplevel).encode()
    cur = await conn.execute(query, {"many": top * 4})
    kept: dict[str, list[Statement]] = {}
    skipped: list[Skipped] = []
    for queryid, datname, calls, total_ms, text in await cur.fetchall():
        if databases is not None and datname not in databases:
            continue
        statement = Statement(int(queryid), datname, int(calls), float(total_ms), text or "")
        chosen = kept.setdefault(datname, [])
        if len(chosen) >= top:
            continue
        reason = refusal(statement.text)
        if reason is not None:
            skipped.append(Skipped(statement, reason, reason.endswith(OTHER_KIND)))
            continue
        chosen.append(
            Statement(
                statement.queryid,
                datname,
                statement.calls,
                statement.total_ms,
                statement.text,
                placeholders(statement.text),
            )
        )
    return kept, skipped
