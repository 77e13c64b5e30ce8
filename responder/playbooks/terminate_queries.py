"""terminate_queries: cancel, then terminate, long-running client queries, with every guard in SQL.

Never signalled: the responder's own session, any session of the role it runs as (other replicas, the
journal) or named `pgwarden-responder*`, non-client backends, superusers and members of superuser roles,
members of `protect_roles` (through any chain of grants), `protect_databases`.
Runs as a role with `pg_signal_backend` (to signal other roles' backends) and `pg_read_all_stats` (to see their
query_start), never as a superuser. Candidates are filtered *before* any signal: a signal to a superuser's
backend raises an ERROR for such a role, and in a set-based `SELECT pg_terminate_backend(pid) FROM ...` that
ERROR would abort the whole statement. Each signal is its own statement, which re-checks (pid, backend_start,
query_start) and every guard in its WHERE clause, so a pid that was reused or a query that has ended is left alone.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal

import psycopg
from pydantic import Field

from pgwarden.durations import Duration
from responder.core import (
    ActionContext,
    ActionParams,
    ActionResult,
    ActionSpec,
    PostgresTarget,
    TargetKind,
    connect,
)

State = Literal["active", "idle in transaction", "idle in transaction (aborted)", "fastpath function call"]


class TerminateQueriesParams(ActionParams):
    min_duration: Duration = Field(default=300.0, gt=0)
    states: tuple[State, ...] = Field(default=("active",), min_length=1)
    grace: Duration = 10.0
    max_kills: int = Field(default=20, ge=1, le=1000)
    cancel_first: bool = True
    protect_roles: tuple[str, ...] = ("rdsadmin", "rds_superuser", "rdsrepladmin")
    protect_databases: tuple[str, ...] = ("rdsadmin",)
    protect_superusers: bool = True  # turning this off changes nothing for a role that is not superuser
    only_alert_database: bool = True  # with a `datname` label, act only in that database


# The guards, shared by the candidate query and by every signal's re-check. A session is protected when its
# login role is, or is a member (directly or through any chain of grants) of, a protected role or a superuser
# role: on RDS the master user is a member of `rds_superuser`, and a member of a superuser role can `SET ROLE`
# to it while pg_stat_activity still shows the login role. A protected name that does not exist matches nothing.
_GUARDS = """
      a.backend_type = 'client backend'
  AND a.pid <> pg_backend_pid()
  AND a.usename IS DISTINCT FROM current_user
  AND a.application_name NOT LIKE 'pgwarden-responder%%'
  AND a.state = ANY(%(states)s::text[])
  AND a.query_start < clock_timestamp() - make_interval(secs => %(min_duration)s::float8)
  AND (a.datname IS NULL OR NOT (a.datname = ANY(%(protect_databases)s::text[])))
  AND (%(datname)s::text IS NULL OR a.datname = %(datname)s::text)
  AND NOT (%(protect_superusers)s::bool AND COALESCE(r.rolsuper, true))
  AND a.usesysid IS NOT NULL AND a.usesysid NOT IN (
    WITH RECURSIVE protected(oid) AS (
        SELECT p.oid FROM pg_roles p
        WHERE p.rolname = ANY(%(protect_roles)s::text[]) OR (%(protect_superusers)s::bool AND p.rolsuper)
      UNION
        SELECT m.member FROM pg_auth_members m JOIN protected ON m.roleid = protected.oid
    )
    SELECT oid FROM protected)
"""

_CANDIDATES = f"""
SELECT a.pid, a.backend_start, a.query_start, a.usename, a.datname, a.state,
       EXTRACT(EPOCH FROM clock_timestamp() - a.query_start)::float8 AS running_seconds,
       left(a.query, 200) AS query
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE {_GUARDS}
ORDER BY a.query_start
LIMIT %(limit)s
"""

_SIGNAL = """
SELECT {fn}(a.pid)
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.pid = %(pid)s AND a.backend_start = %(backend_start)s AND a.query_start = %(query_start)s
  AND {guards}
"""


def _args(params: TerminateQueriesParams, datname: str | None) -> dict[str, Any]:
    return {
        "states": list(params.states),
        "min_duration": params.min_duration,
        "protect_roles": list(params.protect_roles),
        "protect_databases": list(params.protect_databases),
        "datname": datname if params.only_alert_database else None,
        "protect_superusers": params.protect_superusers,
    }


async def _signal(
    ctx: ActionContext[TerminateQueriesParams],
    conn: psycopg.AsyncConnection[Any],
    fn: str,
    args: dict[str, Any],
    victim: dict[str, Any],
) -> bool:
    """Signal one backend through the gate (in dry-run: journaled, not sent); whether it was signalled."""
    shown = {"pid": victim["pid"], "datname": victim.get("datname"), "usename": victim.get("usename")}
    signalled = await ctx.gate.postgres(f"{fn}(pid)", shown, lambda: _send(conn, fn, args, victim))
    return bool(signalled)


async def _send(
    conn: psycopg.AsyncConnection[Any], fn: str, args: dict[str, Any], victim: dict[str, Any]
) -> bool:
    sql = _SIGNAL.format(fn=fn, guards=_GUARDS)
    try:
        cur = await conn.execute(
            sql.encode(),  # a constant string: fn is one of two names chosen below
            {
                **args,
                "pid": victim["pid"],
                "backend_start": victim["backend_start"],
                "query_start": victim["query_start"],
            },
        )
        row = await cur.fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return False
    return bool(row and row[0])


def _jsonable(v: dict[str, Any]) -> dict[str, Any]:
    return {k: (val.isoformat() if isinstance(val, datetime) else val) for k, val in v.items()}


async def run(ctx: ActionContext[TerminateQueriesParams]) -> ActionResult:
    params = ctx.params
    target = ctx.target
    assert isinstance(target, PostgresTarget)
    args = _args(params, target.datname)
    async with await connect(target) as conn:
        await conn.execute("SET statement_timeout = '10s'")
        cur = await conn.execute(_CANDIDATES.encode(), {**args, "limit": params.max_kills})
        names = [c.name for c in cur.description or []]
        victims = [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
        plan = {
            "server": target.display,
            "database": args["datname"],
            "min_duration_seconds": params.min_duration,
            "states": list(params.states),
            "steps": ["cancel", f"wait {params.grace:g}s", "terminate"]
            if params.cancel_first
            else ["terminate"],
            "backends": [_jsonable(v) for v in victims],
        }
        await ctx.save_plan(plan)
        if ctx.dry_run:
            first = "pg_cancel_backend" if params.cancel_first else "pg_terminate_backend"
            for v in victims:
                await _signal(ctx, conn, first, args, v)  # journaled in the plan, not sent
            return {"would_signal": len(victims)}
        if not victims:
            return {"cancelled": [], "terminated": []}
        cancelled: list[int] = []
        if params.cancel_first:
            for v in victims:
                if await _signal(ctx, conn, "pg_cancel_backend", args, v):
                    cancelled.append(v["pid"])
                    ctx.count("backends_cancelled")
            ctx.log.info("queries cancelled", extra={"pids": cancelled})
            await asyncio.sleep(params.grace)
        terminated: list[int] = []
        for v in victims:
            # Still the same backend running the same query, still matching every guard: terminate it.
            if await _signal(ctx, conn, "pg_terminate_backend", args, v):
                terminated.append(v["pid"])
                ctx.count("backends_terminated")
        if terminated:
            ctx.log.info("backends terminated", extra={"pids": terminated})
        return {"cancelled": cancelled, "terminated": terminated}


SPEC = ActionSpec(
    params_model=TerminateQueriesParams,
    target_kind=TargetKind.POSTGRES,
    run=run,
    repeat_by_default="while_firing",  # level-triggered: act again while the alert keeps firing
    description="cancel, then terminate, client queries running longer than min_duration",
    counters={
        "backends_terminated": "PostgreSQL backends terminated by terminate_queries (cancels not counted).",
        "backends_cancelled": "PostgreSQL queries cancelled by terminate_queries.",
    },
)
