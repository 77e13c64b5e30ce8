"""purge_rows: the runbook's "Disk Space Critical: clean up old data", in batches.

`WITH batch AS MATERIALIZED (SELECT key ... WHERE column < cutoff LIMIT batch_size FOR UPDATE SKIP LOCKED)
DELETE FROM table WHERE key IN (SELECT key FROM batch)`, one short autocommit transaction a batch (the batch is a
CTE so that it is selected once: before PostgreSQL 14 a subquery in a DELETE on a partitioned table ran once per
partition, and a batch deleted up to `batch_size` rows in each), until no old row is left or `max_rows` were deleted in this run (the
cap: a run never deletes more, whatever the alert says). The cutoff (`now() - older_than`) is read once, at the
start, so every batch of a run deletes by the same one. Rows the application holds locked are skipped, never
waited for. The table is an operator's parameter, parsed as a table name with PostgreSQL's parser
(`responder.migrate.sqltext`), its single-column primary key found as `migrate backfill` finds it
(`responder.migrate.batches`); every name reaches SQL as `psycopg.sql.Identifier`. Every DELETE goes through the
gate: in dry-run it is journaled, not run, and the rows each batch would delete are counted. Deleting frees
space inside the table for new rows; the disk only gets it back after VACUUM FULL or pg_repack, which this
playbook never runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg import sql
from pydantic import Field, field_validator

from pgwarden.durations import Duration
from responder.core import (
    ActionContext,
    ActionParams,
    ActionResult,
    ActionSpec,
    GuardrailRefused,
    PostgresTarget,
    TargetKind,
    connect,
)
from responder.migrate.batches import BackfillRefused, find_table
from responder.migrate.sqltext import Relation, SqlRefused, parse_table

_COLUMN = """
SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
WHERE a.attrelid = CAST(%s AS regclass) AND a.attname = %s AND a.attnum > 0 AND NOT a.attisdropped
"""
_TIMES = ("date", "timestamp without time zone", "timestamp with time zone")
# A table with inheritance children: its primary key is unique in the parent alone, and a DELETE by key (which
# reaches the children) would also delete a child's row, however recent, that shares the key of an old row.
_INHERITED = """
SELECT c.relkind = 'r' AND EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid)
FROM pg_class c WHERE c.oid = CAST(%s AS regclass)
"""


class PurgeRowsParams(ActionParams):
    table: str  # SCHEMA.TABLE, quoted as SQL quotes names
    column: str = "created_at"  # a date or timestamp column
    older_than: Duration = Field(gt=0)  # rows whose `column` is older than this are deleted
    database: str | None = None  # default: the alert's `datname`, else the target DSN's database
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    max_rows: int = Field(default=1_000_000, ge=1)  # per run
    pause: Duration = Field(default=0.05, ge=0)  # between batches
    lock_timeout: Duration = Field(default=2.0, gt=0)
    statement_timeout: Duration = Field(default=60.0, gt=0)  # one batch

    @field_validator("table")
    @classmethod
    def _one_table(cls, value: str) -> str:
        try:
            parse_table(value)
        except SqlRefused as exc:
            raise ValueError(str(exc).replace("--table", "table")) from None
        return value


def _delete(relation: Relation, key: str, column: str) -> sql.Composed:
    return sql.SQL(
        "WITH batch AS MATERIALIZED (SELECT {key} FROM {rel} WHERE {col} < %(cutoff)s"
        " LIMIT %(limit)s FOR UPDATE SKIP LOCKED) DELETE FROM {rel} WHERE {key} IN (SELECT {key} FROM batch)"
    ).format(rel=relation.identifier(), key=sql.Identifier(key), col=sql.Identifier(column))


def _count(relation: Relation, column: str) -> sql.Composed:
    """The old rows, up to the cap: what a dry run would delete."""
    return sql.SQL(
        "SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} < %(cutoff)s LIMIT %(limit)s) old"
    ).format(relation.identifier(), sql.Identifier(column))


async def _prepare(
    conn: psycopg.AsyncConnection[Any], params: PurgeRowsParams, relation: Relation
) -> tuple[str, Any]:
    """The table's key column and the run's cutoff; GuardrailRefused for a table it cannot purge."""
    try:
        table = await find_table(conn, relation)
    except BackfillRefused as exc:
        raise GuardrailRefused(str(exc)) from None
    name = relation.identifier().as_string(conn)
    cur = await conn.execute(_INHERITED, (name,))
    if (await cur.fetchone() or (False,))[0]:
        raise GuardrailRefused(f"{relation} has inheritance children: its key is not unique across them")
    cur = await conn.execute(_COLUMN, (name, params.column))
    found = await cur.fetchone()
    if found is None:
        raise GuardrailRefused(f"{relation} has no column {params.column!r}")
    if found[0] not in _TIMES:
        raise GuardrailRefused(f"{relation}.{params.column} is {found[0]}, not a date or timestamp")
    cur = await conn.execute("SELECT now() - make_interval(secs => %s)", (params.older_than,))
    cutoff = (await cur.fetchone() or (None,))[0]
    return table.key, cutoff


async def run(ctx: ActionContext[PurgeRowsParams]) -> ActionResult:
    params, target = ctx.params, ctx.target
    assert isinstance(target, PostgresTarget)
    relation = parse_table(params.table)
    dbname = params.database or target.datname
    async with await connect(target, dbname=dbname) as conn:
        # A name over 63 bytes (multibyte characters) is truncated by the server: another database than named.
        cur = await conn.execute("SELECT current_database()")
        database = str((await cur.fetchone() or ("",))[0])
        if dbname is not None and database != dbname:
            raise GuardrailRefused(f"connected to database {database!r}, not {dbname!r}")
        await conn.execute(
            "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
            (f"{int(params.lock_timeout * 1000)}ms", f"{int(params.statement_timeout * 1000)}ms"),
        )
        key, cutoff = await _prepare(conn, params, relation)
        statement = _delete(relation, key, params.column)
        text = statement.as_string(conn)
        cur = await conn.execute(
            _count(relation, params.column), {"cutoff": cutoff, "limit": params.max_rows}
        )
        old = int((await cur.fetchone() or (0,))[0])
        plan = {
            "database": database,
            "table": str(relation),
            "column": params.column,
            "cutoff": cutoff.isoformat(),
            "older_than_seconds": params.older_than,
            "batch_size": params.batch_size,
            "max_rows": params.max_rows,
            "old_rows_up_to_cap": old,
            "statement": text,
        }
        await ctx.save_plan(plan)
        deleted, batches = 0, 0
        while deleted < params.max_rows:
            limit = min(params.batch_size, params.max_rows - deleted)
            if ctx.dry_run:
                rows = min(limit, old - deleted)
                if rows <= 0:
                    break
                await ctx.gate.postgres(
                    text, {"cutoff": plan["cutoff"], "limit": limit, "rows": rows}, _never
                )
            else:
                rows = await _batch(ctx, conn, statement, text, cutoff, limit)
                ctx.count("purged_rows", rows)
            deleted += rows
            batches += 1
            if rows < limit:
                break
            await asyncio.sleep(params.pause)
    capped = deleted >= params.max_rows
    ctx.log.info("rows purged", extra={"table": str(relation), "rows": deleted, "dry_run": ctx.dry_run})
    counted = "would_delete" if ctx.dry_run else "deleted"
    return {counted: deleted, "batches": batches, "capped": capped, "table": str(relation)}


async def _batch(
    ctx: ActionContext[PurgeRowsParams],
    conn: psycopg.AsyncConnection[Any],
    statement: sql.Composed,
    text: str,
    cutoff: Any,
    limit: int,
) -> int:
    async def delete() -> int:
        cur = await conn.execute(statement, {"cutoff": cutoff, "limit": limit})
        return cur.rowcount

    return int(await ctx.gate.postgres(text, {"cutoff": cutoff.isoformat(), "limit": limit}, delete) or 0)


async def _never() -> None:  # pragma: no cover - the gate does not run it in dry-run
    raise AssertionError("a dry run deletes nothing")


SPEC = ActionSpec(
    params_model=PurgeRowsParams,
    target_kind=TargetKind.POSTGRES,
    run=run,
    description="delete rows older than a cutoff from one table, in batches, at most max_rows a run",
    counters={"purged_rows": "Rows deleted by purge_rows."},
)
