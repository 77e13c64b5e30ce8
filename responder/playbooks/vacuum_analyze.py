"""vacuum_analyze: `VACUUM (ANALYZE)` on the table an alert names; never VACUUM FULL.

With `tables: stale_analyze` (for schedules) it vacuums instead every table of the target's database whose last
analyze, manual or automatic, is older than `stale_after` (or never happened), oldest first, at most
`max_tables`; the target then names only a server and a database.

The schema and table come from alert labels, so they are untrusted: the table must exist as an ordinary,
materialised or partitioned table (looked up with bound parameters), and its name reaches SQL only through
`psycopg.sql.Identifier`. The names are compared as text, and the session's database with the one named: a
name longer than PostgreSQL's 63 bytes would otherwise be truncated, and name another table (or database).
Autocommit (VACUUM cannot run in a transaction), with a lock_timeout so the action never queues behind, and
blocks, the application's own locks. PostgreSQL only warns when it skips a table (one the role may not vacuum,
or that is no longer a table: it may have been replaced since it was looked up): such a VACUUM is a failure.
"""

from __future__ import annotations

from typing import Any, Literal

import psycopg
from psycopg import sql
from pydantic import Field

from pgwarden.durations import Duration
from responder.core import (
    ActionContext,
    ActionParams,
    ActionResult,
    ActionSpec,
    GuardrailRefused,
    TableTarget,
    TargetKind,
    connect,
)


class VacuumAnalyzeParams(ActionParams):
    lock_timeout: Duration = Field(default=5.0, gt=0)
    statement_timeout: Duration = Field(default=3600.0, gt=0)
    protect_databases: tuple[str, ...] = ("rdsadmin", "template0", "template1")
    protect_schemas: tuple[str, ...] = ("pg_catalog", "information_schema", "pg_toast")
    tables: Literal["alert", "stale_analyze"] = "alert"  # the alert's table, or every stale one
    stale_after: Duration = Field(default=30 * 86400.0, gt=0)
    max_tables: int = Field(default=50, ge=1, le=1000)


_FIND = """
SELECT c.oid,
       pg_has_role(c.relowner, 'MEMBER')
       OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       OR CASE WHEN current_setting('server_version_num')::int >= 170000
               THEN has_table_privilege(c.oid, 'MAINTAIN') ELSE false END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s::text AND c.relname = %s::text AND c.relkind IN ('r', 'm', 'p')
  AND current_database() = %s::text
"""


# Tables the role may vacuum (in a schema it may use) whose last analyze (manual or auto) is older than the
# cutoff, oldest first.
_STALE = """
SELECT n.nspname, c.relname, extract(epoch FROM greatest(s.last_analyze, s.last_autoanalyze))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_stat_all_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'm') AND NOT (n.nspname = ANY(%s)) AND n.nspname NOT LIKE 'pg_temp%%'
  AND has_schema_privilege(n.oid, 'USAGE')
  AND coalesce(greatest(s.last_analyze, s.last_autoanalyze) < now() - make_interval(secs => %s), true)
  AND (pg_has_role(c.relowner, 'MEMBER')
       OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       OR CASE WHEN current_setting('server_version_num')::int >= 170000
               THEN has_table_privilege(c.oid, 'MAINTAIN') ELSE false END)
ORDER BY greatest(s.last_analyze, s.last_autoanalyze) NULLS FIRST, n.nspname, c.relname
LIMIT %s
"""


class TableSkipped(Exception):
    """PostgreSQL warned that it skipped the table: nothing was vacuumed."""


async def _set_timeouts(conn: psycopg.AsyncConnection[Any], params: VacuumAnalyzeParams) -> None:
    await conn.execute(
        "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
        (f"{int(params.lock_timeout * 1000)}ms", f"{int(params.statement_timeout * 1000)}ms"),
    )


async def _vacuum(
    ctx: ActionContext[VacuumAnalyzeParams],
    conn: psycopg.AsyncConnection[Any],
    statement: sql.Composed,
    text: str,
) -> None:
    """Run one VACUUM (ANALYZE) through the gate (in dry-run: journaled, not run); TableSkipped when
    PostgreSQL skipped the table (it only warns)."""
    skipped: list[str] = []

    def heard(notice: psycopg.errors.Diagnostic) -> None:
        if notice.severity_nonlocalized == "WARNING" and "skipping" in (notice.message_primary or ""):
            skipped.append(notice.message_primary or "")

    async def run() -> None:
        conn.add_notice_handler(heard)
        try:
            await conn.execute(statement)
        finally:
            conn.remove_notice_handler(heard)
        if skipped:
            raise TableSkipped("; ".join(skipped))

    await ctx.gate.postgres(text, {"database": conn.info.dbname}, run)


async def _stale_tables(ctx: ActionContext[VacuumAnalyzeParams], target: TableTarget) -> ActionResult:
    """Every stale table of the database, one VACUUM (ANALYZE) each; a locked table is skipped, not waited for."""
    params = ctx.params
    async with await connect(target.server, dbname=target.datname) as conn:
        cur = await conn.execute(
            _STALE, (list(params.protect_schemas), params.stale_after, params.max_tables)
        )
        tables = [(str(r[0]), str(r[1]), r[2]) for r in await cur.fetchall()]
        statements = [
            sql.SQL("VACUUM (ANALYZE) {}.{}").format(sql.Identifier(s), sql.Identifier(t))
            for s, t, _ in tables
        ]
        texts = [st.as_string(conn) for st in statements]
        await ctx.save_plan(
            {
                "database": target.datname,
                "selection": "stale_analyze",
                "stale_after_seconds": params.stale_after,
                "tables": [{"table": f"{s}.{t}", "last_analyzed": last} for s, t, last in tables],
                "statements": texts,
            }
        )
        if not ctx.dry_run:
            await _set_timeouts(conn, params)
        ran, locked, skipped = [], [], []
        for statement, text in zip(statements, texts, strict=True):
            try:
                await _vacuum(ctx, conn, statement, text)
                ran.append(text)
            except psycopg.errors.LockNotAvailable:
                locked.append(text)
            except TableSkipped:
                skipped.append(text)
        if ctx.dry_run:
            return {"would_run": texts}
        ctx.log.info("stale tables vacuumed", extra={"database": target.datname, "count": len(ran)})
        return {"ran": ran, "skipped_locked": locked, "skipped": skipped}


async def run(ctx: ActionContext[VacuumAnalyzeParams]) -> ActionResult:
    params = ctx.params
    target = ctx.target
    assert isinstance(target, TableTarget)
    if target.datname in params.protect_databases:
        raise GuardrailRefused(f"database {target.datname!r} is protected")
    if params.tables == "stale_analyze":
        return await _stale_tables(ctx, target)
    if target.schemaname in params.protect_schemas:
        raise GuardrailRefused(f"schema {target.schemaname!r} is protected")
    async with await connect(target.server, dbname=target.datname) as conn:
        cur = await conn.execute(_FIND, (target.schemaname, target.relname, target.datname))
        found = await cur.fetchone()
        if found is None:
            raise GuardrailRefused("no such table")
        if not found[1]:
            # PostgreSQL would only warn and skip the table: say so instead of reporting success.
            raise PermissionError(
                "the responder's role may not vacuum this table (needs ownership or MAINTAIN)"
            )
        statement = sql.SQL("VACUUM (ANALYZE) {}.{}").format(
            sql.Identifier(target.schemaname), sql.Identifier(target.relname)
        )
        text = statement.as_string(conn)
        await ctx.save_plan(
            {"database": target.datname, "statement": text, "lock_timeout_seconds": params.lock_timeout}
        )
        if not ctx.dry_run:
            await _set_timeouts(conn, params)
        try:
            await _vacuum(ctx, conn, statement, text)
        except psycopg.errors.LockNotAvailable as exc:
            raise GuardrailRefused(f"table is locked (lock_timeout {params.lock_timeout:g}s): {exc}") from exc
        if ctx.dry_run:
            return {"would_run": text}
        ctx.log.info("table vacuumed", extra={"database": target.datname, "statement": text})
        return {"ran": text}


SPEC = ActionSpec(
    params_model=VacuumAnalyzeParams,
    target_kind=TargetKind.TABLE,
    run=run,
    repeat_by_default="while_firing",  # level-triggered: act again while the alert keeps firing
    description="VACUUM (ANALYZE) the table named by the alert",
)
