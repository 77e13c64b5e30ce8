"""vacuum_analyze: `VACUUM (ANALYZE)` on the table an alert names; never VACUUM FULL.

The schema and table come from alert labels, so they are untrusted: the table must exist as an ordinary,
materialised or partitioned table (looked up with bound parameters), and its name reaches SQL only through
`psycopg.sql.Identifier`. Autocommit (VACUUM cannot run in a transaction), with a lock_timeout so the action
never queues behind, and blocks, the application's own locks.
"""

from __future__ import annotations

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


_FIND = """
SELECT c.oid,
       pg_has_role(c.relowner, 'MEMBER')
       OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       OR CASE WHEN current_setting('server_version_num')::int >= 170000
               THEN has_table_privilege(c.oid, 'MAINTAIN') ELSE false END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'm', 'p')
"""


async def run(ctx: ActionContext[VacuumAnalyzeParams]) -> ActionResult:
    params = ctx.params
    target = ctx.target
    assert isinstance(target, TableTarget)
    if target.datname in params.protect_databases:
        raise GuardrailRefused(f"database {target.datname!r} is protected")
    if target.schemaname in params.protect_schemas:
        raise GuardrailRefused(f"schema {target.schemaname!r} is protected")
    async with await connect(target.server, dbname=target.datname) as conn:
        cur = await conn.execute(_FIND, (target.schemaname, target.relname))
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
        if ctx.dry_run:
            return {"would_run": text}
        await conn.execute(
            "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
            (f"{int(params.lock_timeout * 1000)}ms", f"{int(params.statement_timeout * 1000)}ms"),
        )
        try:
            await conn.execute(statement)
        except psycopg.errors.LockNotAvailable as exc:
            raise GuardrailRefused(f"table is locked (lock_timeout {params.lock_timeout:g}s): {exc}") from exc
        ctx.log.info("table vacuumed", extra={"database": target.datname, "statement": text})
        return {"ran": text}


SPEC = ActionSpec(
    name="vacuum_analyze",
    params_model=VacuumAnalyzeParams,
    target_kind=TargetKind.TABLE,
    run=run,
    repeat_by_default="while_firing",  # level-triggered: act again while the alert keeps firing
    description="VACUUM (ANALYZE) the table named by the alert",
)
