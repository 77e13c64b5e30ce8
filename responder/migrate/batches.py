"""One batch of a backfill, exactly once: the batch's UPDATE and its progress commit in one transaction.

The progress lives on the target, beside the rows it counts, in `pgwarden.backfill_progress` (a schema of its
own, created by the first enforce run): a journal on another server (or in a SQLite file) could not commit in
the same transaction as the batch, and a crash between the two commits would either lose a batch's progress
(the batch would run again: rows updated twice) or journal progress that never committed. Here a batch either
committed with its progress or did not happen at all, so `--resume` starts after the last committed batch. The
row is keyed by a random key the journal row's plan holds, so two journals never share a progress row; the row
is locked (`FOR UPDATE`) by each batch, so two runs of one backfill never run a batch at the same time.

The table is walked by its primary key (a single column: a composite or absent key is refused), from just
after the last committed key to the `batch_size`-th next key, whatever `--where` selects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from responder.migrate.sqltext import Assignment, Relation

PROGRESS = sql.SQL("pgwarden.backfill_progress")

_CREATE: list[sql.SQL | sql.Composed] = [
    sql.SQL("CREATE SCHEMA IF NOT EXISTS pgwarden"),
    sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, relation text NOT NULL, statement text NOT NULL,"
        " last_key text, rows_done bigint NOT NULL DEFAULT 0, batches bigint NOT NULL DEFAULT 0,"
        " finished boolean NOT NULL DEFAULT false, updated_at timestamptz NOT NULL DEFAULT now())"
    ).format(PROGRESS),
]

_PRIMARY_KEY = """
SELECT c.oid, array_agg(a.attname::text ORDER BY a.attnum), array_agg(format_type(a.atttypid, a.atttypmod))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
GROUP BY c.oid
"""


class BackfillRefused(Exception):
    """The table cannot be backfilled as asked (absent, no single-column primary key, the key itself set)."""


@dataclass(frozen=True)
class Table:
    relation: Relation
    key: str  # the primary key's one column
    key_type: str  # format_type(): already quoted as SQL needs

    def key_id(self) -> sql.Identifier:
        return sql.Identifier(self.key)


@dataclass(frozen=True)
class Job:
    """What one backfill does: the table, its assignment and condition, and its progress row's key."""

    table: Table
    assignment: Assignment
    condition: str | None
    key: str


@dataclass(frozen=True)
class Progress:
    last_key: str | None
    rows_done: int
    batches: int
    finished: bool


@dataclass(frozen=True)
class Batch:
    """A batch that committed (or, in dry-run, was counted): its keys (exclusive, inclusive] and rows."""

    after: str | None
    upto: str | None  # None: no key left, the walk is over
    rows: int


async def find_table(conn: psycopg.AsyncConnection[Any], relation: Relation) -> Table:
    cur = await conn.execute(_PRIMARY_KEY, (relation.schema, relation.name))
    row = await cur.fetchone()
    if row is None:
        raise BackfillRefused(f"no table {relation} (an ordinary or partitioned table)")
    columns = [c for c in row[1] if c is not None]
    if not columns:
        raise BackfillRefused(f"{relation} has no primary key: backfill walks a single-column primary key")
    if len(columns) > 1:
        raise BackfillRefused(
            f"{relation} has a composite primary key ({', '.join(columns)}): only a single-column key is walked"
        )
    return Table(relation, columns[0], str(row[2][0]))


def update_statement(
    table: Table, assignment: Assignment, condition: str | None, first: bool
) -> sql.Composed:
    """`UPDATE t SET col = (expr) WHERE key > %(after)s AND key <= %(upto)s AND (where)` (`first`: from the
    table's first key, no lower bound)."""
    if assignment.column == table.key:
        raise BackfillRefused(f"--set must not change the primary key {table.key}: the walk follows it")
    return sql.SQL("UPDATE {} SET {} = ({}) WHERE {}").format(
        table.relation.identifier(),
        sql.Identifier(assignment.column),
        _operator_sql(assignment.expression),
        _range(table, condition, first),
    )


def count_statement(table: Table, condition: str | None, first: bool) -> sql.Composed:
    """What a dry run counts in place of the batch's UPDATE."""
    return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
        table.relation.identifier(), _range(table, condition, first)
    )


def total_statement(table: Table, condition: str | None) -> sql.Composed:
    """Run with params (`{}`): the condition's `%` are doubled."""
    where = sql.SQL("({})").format(_operator_sql(condition)) if condition else sql.SQL("true")
    return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(table.relation.identifier(), where)


def _operator_sql(text: str) -> sql.SQL:
    """The operator's expression (parsed and deparsed: `responder.migrate.sqltext`) in a statement run with
    parameters: its `%` (the modulo operator, in a string literal) doubled."""
    return sql.SQL(text.replace("%", "%%"))


def _cast(table: Table, placeholder: str) -> sql.Composed:
    return sql.SQL("CAST({} AS {})").format(sql.Placeholder(placeholder), sql.SQL(table.key_type))


def _range(table: Table, condition: str | None, first: bool) -> sql.Composed:
    """Keys after `%(after)s` (`first`: from the first key) up to `%(upto)s`, and the condition. Two shapes,
    never `$1 IS NULL OR key > $1`: a generic plan of that could not use the key's index."""
    key = table.key_id()
    parts = [sql.SQL("{} <= {}").format(key, _cast(table, "upto"))]
    if not first:
        parts.insert(0, sql.SQL("{} > {}").format(key, _cast(table, "after")))
    if condition:
        parts.append(sql.SQL("({})").format(_operator_sql(condition)))
    return sql.SQL(" AND ").join(parts)


async def next_upto(
    conn: psycopg.AsyncConnection[Any], table: Table, after: str | None, size: int
) -> str | None:
    """The key that ends the batch after `after`: the `size`-th next key, or the last one; None when none is left."""
    key, rel = table.key_id(), table.relation.identifier()
    where = sql.SQL("true") if after is None else sql.SQL("{} > {}").format(key, _cast(table, "after"))
    query = sql.SQL(
        "SELECT max(k)::text FROM (SELECT {key} AS k FROM {rel} WHERE {where} ORDER BY {key} LIMIT %(size)s) b"
    ).format(key=key, rel=rel, where=where)
    cur = await conn.execute(query, {"after": after, "size": size})
    row = await cur.fetchone()
    return None if row is None or row[0] is None else str(row[0])


async def create_progress(
    conn: psycopg.AsyncConnection[Any], key: str, relation: str, statement: str
) -> None:
    """The progress row of a new backfill (and the table, the first time)."""
    async with conn.transaction():
        for ddl in _CREATE:
            await conn.execute(ddl)
        await conn.execute(
            sql.SQL("INSERT INTO {} (key, relation, statement) VALUES (%s, %s, %s)").format(PROGRESS),
            (key, relation, statement),
        )


async def read_progress(conn: psycopg.AsyncConnection[Any], key: str, lock: bool = False) -> Progress | None:
    query = sql.SQL("SELECT last_key, rows_done, batches, finished FROM {} WHERE key = %s").format(PROGRESS)
    if lock:
        query = sql.SQL("{} FOR UPDATE").format(query)
    try:
        cur = await conn.execute(query, (key,))
    except psycopg.errors.UndefinedTable:
        return None
    row = await cur.fetchone()
    return None if row is None else Progress(row[0], int(row[1]), int(row[2]), bool(row[3]))


async def commit_progress(conn: psycopg.AsyncConnection[Any], key: str, batch: Batch) -> None:
    """In the batch's transaction: the batch is done."""
    await conn.execute(
        sql.SQL(
            "UPDATE {} SET last_key = coalesce(%s, last_key), rows_done = rows_done + %s,"
            " batches = batches + %s, finished = %s, updated_at = now() WHERE key = %s"
        ).format(PROGRESS),
        (batch.upto, batch.rows, 0 if batch.upto is None else 1, batch.upto is None, key),
    )
