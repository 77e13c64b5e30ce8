"""The swap of `pgwarden-responder recover` (`responder.drills.recovery`): pre-checks, the confirmation, then
maintenance on, drain, two renames, the secret, restart, maintenance off, each part journaled when done."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from responder.drills import checks, engine
from responder.drills.recovery import Context, RecoveryStopped, connect_dsn, rename_api
from responder.effects import ApiCall, EffectRefused
from responder.outcomes import Outcome

SWAP_STEPS = (
    "maintenance_on",
    "drain",
    "rename_production",
    "rename_recovered",
    "secret",
    "restart",
    "maintenance_off",
)


async def _hook(ctx: Context, name: str, argv: tuple[str, ...]) -> None:
    if not argv:
        ctx.say(f"      hook {name}: not configured")
        return
    env = {
        **os.environ,
        "PGWARDEN_RECOVERY_ID": str(ctx.action_id),
        "PGWARDEN_INSTANCE": ctx.target.identifier,
        "PGWARDEN_RECOVERED_INSTANCE": ctx.plan["recovered"],
        "PGWARDEN_HOOK": name,
    }
    timeout = ctx.recovery.hooks.timeout
    try:
        code = await ctx.gate.hook(name, argv, env, timeout)
    except TimeoutError:
        raise RecoveryStopped(f"hook {name} did not finish in {timeout:g}s") from None
    if code is not None and code != 0:
        raise RecoveryStopped(f"hook {name} exited {code}; fix it, then --resume {ctx.action_id}")
    ctx.say(f"      hook {name}: ok")


async def _client_sessions(ctx: Context) -> int:
    instance = await engine.describe(ctx.rds, ctx.target.identifier, ctx.target.region)
    connect = ctx.recovery.connect
    conninfo = checks.check_conninfo(connect_dsn(connect), connect, engine.endpoint_of(instance))
    async with await checks.connect_checked(conninfo, connect) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            " AND pid <> pg_backend_pid() AND datname = current_database()"
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def _drain(ctx: Context) -> None:
    drain = ctx.recovery.drain
    deadline = time.monotonic() + drain.timeout
    while True:
        count = await _client_sessions(ctx)
        if count <= drain.max_connections:
            ctx.say(f"      drained: {count} client sessions on production")
            return
        if time.monotonic() > deadline:
            raise RecoveryStopped(
                f"production still has {count} client sessions after {drain.timeout:g}s (maintenance mode is"
                f" on); --resume {ctx.action_id} to try again"
            )
        ctx.say(f"      waiting for {count} client sessions to end")
        await asyncio.sleep(2)


async def _rename(ctx: Context, old: str, new: str) -> None:
    region = ctx.target.region
    if (
        await engine.find(ctx.rds, new, region) is not None
        and await engine.find(ctx.rds, old, region) is None
    ):
        ctx.say(f"      {old} is already {new}")
    else:
        api = rename_api(old, new, region)
        ctx.say(f"      ModifyDBInstance {old} -> {new}")
        await ctx.gate.aws(ctx.rds, api)

    async def progress(status: str, elapsed: float) -> None:
        ctx.say(f"      {new}: {status} ({elapsed:.0f} s)")

    await engine.wait_available(ctx.rds, new, region, ctx.recovery.wait_timeout, progress)


async def _update_secret(ctx: Context) -> None:
    secret = ctx.recovery.secret
    if secret is None:
        ctx.say("      secret: not configured")
        return
    instance = await engine.describe(ctx.rds, ctx.target.identifier, ctx.target.region)
    host, port = engine.endpoint_of(instance)
    region = secret.region or ctx.target.region
    client = ctx.rds.secrets_client(region)
    current = await engine.call(ctx.rds, lambda: client.get_secret_value(SecretId=secret.secret_id))
    value = json.loads(current["SecretString"])
    value.update(host=host, port=port, dbInstanceIdentifier=ctx.target.identifier)
    api = ApiCall(
        "PutSecretValue",
        region,
        {"SecretId": secret.secret_id, "SecretString": json.dumps(value)},
        service="secretsmanager",
    )
    await ctx.gate.aws(ctx.rds, api, client=client)
    ctx.say(f"      secret {secret.secret_id}: host {host}, port {port}")


def _rename_attempted(ctx: Context, old: str, new: str) -> bool:
    """Whether this recovery has journaled (done, or started: it may have happened) the rename old -> new."""
    production = (old, new) == (ctx.target.identifier, ctx.plan["old"])
    if production and ctx.done("swap.rename_production"):
        return True
    if new == ctx.target.identifier and ctx.done("swap.rename_recovered"):
        return True
    return any(
        e.get("operation") == "ModifyDBInstance"
        and e.get("state") in ("started", "done", "failed")
        and (e.get("params") or {}).get("DBInstanceIdentifier") == old
        and (e.get("params") or {}).get("NewDBInstanceIdentifier") == new
        for e in ctx.gate.effects
    )


async def swap_prechecks(ctx: Context) -> None:
    """Everything the swap needs, checked before any part of it (a hook, the drain, a rename) is made: the
    comparison passed, the recovered instance is available and still this recovery's (its tag), and `<id>-old`
    is free (unless this recovery's own rename made it)."""
    ident, recovered, old, region = (
        ctx.target.identifier,
        ctx.plan["recovered"],
        ctx.plan["old"],
        ctx.target.region,
    )
    compare = ctx.plan["steps"].get("compare") or {}
    if not compare.get("passed") or not compare.get("recovered"):
        raise RecoveryStopped(
            "a check failed on the recovered instance: not swapping it in", Outcome.GUARDRAIL
        )
    if not _rename_attempted(ctx, recovered, ident):
        instance = await engine.find(ctx.rds, recovered, region)
        status = instance.get("DBInstanceStatus") if instance is not None else "not found"
        if status != "available":
            raise RecoveryStopped(
                f"{recovered} is {status}: nothing swapped (--resume {ctx.action_id} when it is available)",
                Outcome.GUARDRAIL,
            )
        try:  # replaced by someone else since the restore: the gate would refuse only its rename, too late
            await ctx.gate.require_owned(ctx.rds, recovered, region)
        except EffectRefused as exc:
            raise RecoveryStopped(f"{exc}; nothing swapped", Outcome.GUARDRAIL) from exc
    if not _rename_attempted(ctx, ident, old) and await engine.find(ctx.rds, old, region) is not None:
        raise RecoveryStopped(
            f"{old} already exists: rename or delete it, then --resume {ctx.action_id} --swap; nothing swapped",
            Outcome.GUARDRAIL,
        )


async def step_swap(ctx: Context, confirm: Callable[[str], str]) -> None:
    ident, recovered, old = ctx.target.identifier, ctx.plan["recovered"], ctx.plan["old"]
    await swap_prechecks(ctx)
    if ctx.confirmed:
        by = "--yes"
    else:
        answer = confirm(
            f"Swap {recovered} in as {ident} (production becomes {old})? Type {ident} to confirm: "
        )
        if answer.strip() != ident:
            raise RecoveryStopped(
                f"not confirmed; nothing swapped (--resume {ctx.action_id} --swap to retry)"
            )
        by = "typed"
    ctx.plan.setdefault("confirmations", []).append({"at": engine.iso(datetime.now(UTC)), "by": by})
    await ctx.gate.save_plan(ctx.plan)
    ctx.say("[4/4] swap")
    hooks = ctx.recovery.hooks
    parts: dict[str, Callable[[], Awaitable[None]]] = {
        "maintenance_on": lambda: _hook(ctx, "maintenance_on", hooks.maintenance_on),
        "drain": lambda: _drain(ctx),
        "rename_production": lambda: _rename(ctx, ident, old),
        "rename_recovered": lambda: _rename(ctx, recovered, ident),
        "secret": lambda: _update_secret(ctx),
        "restart": lambda: _hook(ctx, "restart", hooks.restart),
        "maintenance_off": lambda: _hook(ctx, "maintenance_off", hooks.maintenance_off),
    }
    for name in SWAP_STEPS:
        step = f"swap.{name}"
        if ctx.done(step):
            ctx.say(f"      {name}: done before")
            continue
        await parts[name]()
        await ctx.finish_step(step)
    await ctx.finish_step("swap")
    ctx.say(f"      {ident} is now the recovered instance; the old production is {old} (delete it when sure)")
