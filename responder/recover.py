"""`pgwarden-responder recover`: the runbook's point-in-time recovery, guided, on the drill engine.

1. window: the time is checked against EarliestRestorableTime/LatestRestorableTime;
2. restore: RestoreDBInstanceToPointInTime to `<id>-recovery-<yyyymmdd>` (tagged `pgwarden:recovery=<action
   id>`, never `pgwarden:drill`: the sweeper leaves it alone), waiting with progress;
3. compare: the `recovery.checks` against the recovered instance and production, side by side;
4. swap (only with `--swap`, and `--yes` or a typed confirmation): maintenance hook, drain, rename production to
   `<id>-old` and the recovered instance to `<id>`, the Secrets Manager secret, restart hook, maintenance off.

Every step (and each part of the swap) is journaled in the plan of one journal row (action `recover`) when it
is done; `--resume <id>` continues after the last finished one. `--dry-run` prints every API call and hook.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import boto3

from pgwarden.cli import print_config_errors
from pgwarden.logs import setup_logging
from responder.aws import RdsApi
from responder.config import Config, ConfigError, load_config
from responder.core import ActionRegistry, RdsTarget
from responder.drills import engine
from responder.drills.models import ConnectSpec, RecoverySchema
from responder.journal import Journal, JournalUnavailable, Tx, open_store
from responder.outcomes import Outcome, State
from responder.playbooks import default_registry

log = logging.getLogger("responder.recover")

ACTION = "recover"
SWAP_STEPS = (
    "maintenance_on",
    "drain",
    "rename_production",
    "rename_recovered",
    "secret",
    "restart",
    "maintenance_off",
)


class RecoveryStopped(Exception):
    """A step cannot go on; the message says why and what to do. `outcome` is what the journal records."""

    def __init__(self, message: str, outcome: Outcome = Outcome.FAILED) -> None:
        super().__init__(message)
        self.outcome = outcome


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgwarden-responder recover",
        description="Guided point-in-time recovery of an RDS PostgreSQL instance (the runbook's procedure).",
    )
    parser.add_argument("--config", type=Path, default=Path("responder.yml"), help="YAML configuration file")
    parser.add_argument("--instance", help="the production instance identifier")
    parser.add_argument("--to", dest="to", help="the time to recover to, RFC 3339 (2024-01-15T14:30:00Z)")
    parser.add_argument("--region", help="default: aws.region")
    parser.add_argument("--class", dest="instance_class", help="the recovered instance's class")
    parser.add_argument("--swap", action="store_true", help="after the comparison, swap it in for production")
    parser.add_argument("--yes", action="store_true", help="do not ask before the swap")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan and every API call; change nothing"
    )
    parser.add_argument(
        "--resume", type=int, metavar="ID", help="continue the recovery journaled as action ID"
    )
    parser.add_argument("--log.level", dest="log_level", default="warning")
    return parser


def _journal_owner() -> str:
    return f"recover:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def op_start(
    owner: str, target: RdsTarget, labels: dict[str, str], mode: str, now: float
) -> Callable[[Tx], int]:
    """A new journal row for this recovery, running and owned by this process."""

    def run(tx: Tx) -> int:
        row = tx.execute(
            "INSERT INTO pgwarden_actions (created_at, updated_at, owner, playbook, action, mode, alertname,"
            " fingerprint, starts_at, alert_status, target, target_key, state, labels, started_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
            (now, now, owner, ACTION, ACTION, mode, ACTION, target.identifier, labels["to"], "manual",
             target.describe(), target.key, State.RUNNING.value, json.dumps(labels, sort_keys=True), now),
        ).fetchone()  # fmt: skip
        return int(row[0])

    return run


def op_take_over(action_id: int, owner: str, now: float, stale_after: float) -> Callable[[Tx], str | None]:
    """Own the row again to resume it, unless a live process still runs it; None, or why not."""

    def run(tx: Tx) -> str | None:
        row = tx.execute(
            "SELECT state, a.owner, r.seen_at FROM pgwarden_actions a"
            " LEFT JOIN pgwarden_replicas r ON r.owner = a.owner WHERE a.id = ? AND a.action = ?",
            (action_id, ACTION),
        ).fetchone()
        if row is None:
            return f"no recovery with id {action_id}"
        if row[0] == State.RUNNING and row[2] is not None and float(row[2]) >= now - stale_after:
            return "busy"
        tx.execute(
            "UPDATE pgwarden_actions SET state = ?, owner = ?, outcome = NULL, error = NULL, updated_at = ?,"
            " finished_at = NULL WHERE id = ?",
            (State.RUNNING.value, owner, now, action_id),
        )
        return None

    return run


@dataclass
class Context:
    config: Config
    recovery: RecoverySchema
    rds: RdsApi
    journal: Journal
    action_id: int
    plan: dict[str, Any]
    out: TextIO
    dry_run: bool

    @property
    def target(self) -> RdsTarget:
        return RdsTarget(self.plan["instance"], self.plan["region"])

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def done(self, step: str) -> bool:
        return bool(self.plan["steps"].get(step, {}).get("done"))

    async def finish_step(self, step: str, **detail: Any) -> None:
        self.plan["steps"][step] = {"done": True, "at": engine.iso(datetime.now(UTC)), **detail}
        await self.journal.set_plan(self.action_id, self.plan)


# ---- the steps ---------------------------------------------------------------------------------------------------


async def step_window(ctx: Context) -> None:
    target = ctx.target
    instance = await engine.describe(ctx.rds, target.identifier, target.region)
    when = engine.parse_time(ctx.plan["to"])
    earliest, latest = engine.restorable_window(instance)
    ctx.say(
        f"[1/4] window: {target.identifier} can be restored from {engine.iso(earliest) or '(unknown)'}"
        f" to {engine.iso(latest) or '(none)'}"
    )
    try:
        engine.check_restore_time(instance, when)
    except engine.DrillError as exc:
        raise RecoveryStopped(str(exc), Outcome.GUARDRAIL) from exc
    ctx.say(f"      {ctx.plan['to']} is possible")
    vpc = [
        g["VpcSecurityGroupId"]
        for g in instance.get("VpcSecurityGroups") or []
        if g.get("VpcSecurityGroupId")
    ]
    subnet = (instance.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
    await ctx.finish_step(
        "window",
        earliest=engine.iso(earliest),
        latest=engine.iso(latest),
        production={
            "class": instance.get("DBInstanceClass"),
            "subnet_group": subnet,
            "vpc_security_group_ids": vpc,
        },
    )


def _restore_api(ctx: Context) -> engine.ApiCall:
    production = ctx.plan["steps"]["window"]["production"]
    r = ctx.recovery
    options = engine.RestoreOptions(
        ctx.plan.get("instance_class") or r.instance_class or production["class"],
        r.db_subnet_group or production["subnet_group"],
        r.vpc_security_group_ids or tuple(production["vpc_security_group_ids"]),
    )
    when = engine.parse_time(ctx.plan["to"])
    source = engine.Source("point_in_time", ctx.target.region, when, restore_time=when)
    tags = {engine.RECOVERY_TAG: str(ctx.action_id)}
    return engine.restore_call(source, ctx.target.identifier, ctx.plan["recovered"], options, tags)


async def step_restore(ctx: Context) -> None:
    recovered, region = ctx.plan["recovered"], ctx.target.region
    existing = await engine.find(ctx.rds, recovered, region)
    if existing is not None:
        if engine.tags_of(existing).get(engine.RECOVERY_TAG) != str(ctx.action_id):
            raise RecoveryStopped(
                f"{recovered} already exists and is not this recovery's: rename or delete it"
            )
        ctx.say(f"[2/4] restore: {recovered} was already requested by this recovery")
    else:
        api = _restore_api(ctx)
        ctx.say(f"[2/4] restore: {api.operation} to {recovered} ({api.params.get('DBInstanceClass')})")
        await engine.invoke(ctx.rds, api)

    async def progress(status: str, elapsed: float) -> None:
        ctx.say(f"      {recovered}: {status} ({elapsed:.0f} s)")

    try:
        seconds, _ = await engine.wait_available(
            ctx.rds, recovered, region, ctx.recovery.wait_timeout, progress
        )
    except engine.DrillError as exc:
        raise RecoveryStopped(f"{exc}; resume with --resume {ctx.action_id}") from exc
    ctx.say(f"      {recovered} is available after {seconds:.0f} s")
    await ctx.finish_step("restore", restore_seconds=round(seconds, 3))


def _dsn(connect: ConnectSpec) -> str:
    dsn = os.environ.get(connect.dsn_env, "").strip()
    if not dsn:
        raise RecoveryStopped(f"recovery.connect.dsn_env: environment variable {connect.dsn_env} is not set")
    return dsn


async def _checks_on(ctx: Context, identifier: str) -> list[dict[str, Any]]:
    instance = await engine.describe(ctx.rds, identifier, ctx.target.region)
    connect = ctx.recovery.connect
    conninfo = engine.check_conninfo(_dsn(connect), connect, engine.endpoint_of(instance))
    return await engine.run_checks(conninfo, connect, ctx.recovery.checks)


async def step_compare(ctx: Context) -> None:
    ctx.say("[3/4] compare: the recovery checks on both instances")
    recovered = await _checks_on(ctx, ctx.plan["recovered"])
    production = await _checks_on(ctx, ctx.target.identifier)
    width = max([len(c.name) for c in ctx.recovery.checks] + [5])
    ctx.say(f"      {'check':<{width}}  {'production':>14}  {'recovered':>14}  expect")
    for rec, prod in zip(recovered, production, strict=True):
        mark = "ok" if rec["passed"] else "FAILED"
        ctx.say(
            f"      {rec['name']:<{width}}  {_shown(prod):>14}  {_shown(rec):>14}  {rec['expect']} {mark}"
        )
    passed = all(c["passed"] for c in recovered)
    await ctx.finish_step("compare", recovered=recovered, production=production, passed=passed)


def _shown(check: dict[str, Any]) -> str:
    return "error" if check.get("error") else str(check["value"])


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
    proc = await asyncio.create_subprocess_exec(*argv, env=env)
    try:
        async with asyncio.timeout(ctx.recovery.hooks.timeout):
            code = await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RecoveryStopped(f"hook {name} did not finish in {ctx.recovery.hooks.timeout:g}s") from None
    if code != 0:
        raise RecoveryStopped(f"hook {name} exited {code}; fix it, then --resume {ctx.action_id}")
    ctx.say(f"      hook {name}: ok")


async def _client_sessions(ctx: Context) -> int:
    instance = await engine.describe(ctx.rds, ctx.target.identifier, ctx.target.region)
    connect = ctx.recovery.connect
    conninfo = engine.check_conninfo(_dsn(connect), connect, engine.endpoint_of(instance))
    async with await engine.connect_checked(conninfo, connect) as conn:
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
        api = _rename_api(old, new, region)
        ctx.say(f"      ModifyDBInstance {old} -> {new}")
        await engine.invoke(ctx.rds, api)

    async def progress(status: str, elapsed: float) -> None:
        ctx.say(f"      {new}: {status} ({elapsed:.0f} s)")

    await engine.wait_available(ctx.rds, new, region, ctx.recovery.wait_timeout, progress)


def _rename_api(old: str, new: str, region: str) -> engine.ApiCall:
    params = {"DBInstanceIdentifier": old, "NewDBInstanceIdentifier": new, "ApplyImmediately": True}
    return engine.ApiCall("ModifyDBInstance", region, params)


def _secrets_client(ctx: Context) -> Any:
    secret = ctx.recovery.secret
    assert secret is not None and ctx.config.aws is not None
    return boto3.client(
        "secretsmanager",
        region_name=secret.region or ctx.target.region,
        endpoint_url=ctx.config.aws.endpoint_url,
    )


async def _update_secret(ctx: Context) -> None:
    secret = ctx.recovery.secret
    if secret is None:
        ctx.say("      secret: not configured")
        return
    instance = await engine.describe(ctx.rds, ctx.target.identifier, ctx.target.region)
    host, port = engine.endpoint_of(instance)
    client = _secrets_client(ctx)
    current = await engine.call(ctx.rds, lambda: client.get_secret_value(SecretId=secret.secret_id))
    value = json.loads(current["SecretString"])
    value.update(host=host, port=port, dbInstanceIdentifier=ctx.target.identifier)
    text = json.dumps(value)
    await engine.call(ctx.rds, lambda: client.put_secret_value(SecretId=secret.secret_id, SecretString=text))
    ctx.say(f"      secret {secret.secret_id}: host {host}, port {port}")


async def step_swap(ctx: Context, confirm: Callable[[str], str]) -> None:
    ident, recovered, old = ctx.target.identifier, ctx.plan["recovered"], ctx.plan["old"]
    if not ctx.plan["steps"]["compare"]["passed"]:
        raise RecoveryStopped(
            "a check failed on the recovered instance: not swapping it in", Outcome.GUARDRAIL
        )
    if not ctx.plan.get("confirmed"):
        answer = confirm(
            f"Swap {recovered} in as {ident} (production becomes {old})? Type {ident} to confirm: "
        )
        if answer.strip() != ident:
            raise RecoveryStopped(
                f"not confirmed; nothing swapped (--resume {ctx.action_id} --swap to retry)"
            )
        ctx.plan["confirmed"] = True
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


def dry_run_plan(ctx: Context) -> list[dict[str, Any]]:
    """Every call and hook the recovery would make, in order."""
    ident, recovered, old, region = (
        ctx.target.identifier,
        ctx.plan["recovered"],
        ctx.plan["old"],
        ctx.target.region,
    )
    calls: list[dict[str, Any]] = [_restore_api(ctx).describe()]
    calls.append(
        {
            "operation": "DescribeDBInstances (poll until available)",
            "params": {"DBInstanceIdentifier": recovered},
        }
    )
    names = [c.name for c in ctx.recovery.checks]
    calls.append({"checks": names, "on": [recovered, ident]})
    if ctx.plan["swap"]:
        hooks = ctx.recovery.hooks
        calls.append({"hook": "maintenance_on", "argv": list(hooks.maintenance_on)})
        calls.append({"drain": {"max_connections": ctx.recovery.drain.max_connections}})
        calls.append(_rename_api(ident, old, region).describe())
        calls.append(_rename_api(recovered, ident, region).describe())
        if ctx.recovery.secret is not None:
            calls.append(
                {"operation": "GetSecretValue", "params": {"SecretId": ctx.recovery.secret.secret_id}}
            )
            calls.append(
                {"operation": "PutSecretValue", "params": {"SecretId": ctx.recovery.secret.secret_id,
                                                             "SecretString": "(host and port of the new " + ident + ")"}}
            )  # fmt: skip
        calls.append({"hook": "restart", "argv": list(hooks.restart)})
        calls.append({"hook": "maintenance_off", "argv": list(hooks.maintenance_off)})
    return calls


async def run_steps(ctx: Context, confirm: Callable[[str], str]) -> None:
    if not ctx.done("window"):
        await step_window(ctx)
    else:
        ctx.say("[1/4] window: done before")
    if ctx.dry_run:
        ctx.plan["dry_run_calls"] = dry_run_plan(ctx)
        ctx.say("dry run: these calls would be made, in order:")
        for call in ctx.plan["dry_run_calls"]:
            ctx.say("  " + json.dumps(call, sort_keys=True))
        await ctx.journal.set_plan(ctx.action_id, ctx.plan)
        return
    if not ctx.done("restore"):
        await step_restore(ctx)
    else:
        ctx.say("[2/4] restore: done before")
    if not ctx.done("compare"):
        await step_compare(ctx)
    else:
        ctx.say("[3/4] compare: done before")
    if ctx.plan["swap"] and not ctx.done("swap"):
        await step_swap(ctx, confirm)
    elif not ctx.plan["swap"]:
        ctx.say(f"[4/4] swap: not asked for (--resume {ctx.action_id} --swap to swap it in)")


# ---- the command -----------------------------------------------------------------------------------------------


async def _heartbeat(journal: Journal, stale_after: float) -> None:
    """Stay alive in the replica table, so no responder takes this recovery for a dead one."""
    while True:
        with contextlib.suppress(JournalUnavailable):
            await journal.heartbeat(stale_after)
        await asyncio.sleep(max(0.2, stale_after / 3))


async def _resume_row(
    args: argparse.Namespace, config: Config, journal: Journal, out: TextIO
) -> tuple[int, dict[str, Any]]:
    """Take the journaled recovery over (once its last runner's heartbeat is stale) with its plan."""
    stale_after = config.schema.replica_timeout
    deadline = time.monotonic() + stale_after + 2
    while (
        why := await journal.store.run(op_take_over(args.resume, journal.owner, time.time(), stale_after))
    ) == "busy":
        if time.monotonic() > deadline:
            raise RecoveryStopped(f"recovery {args.resume} is being run by a live process", Outcome.GUARDRAIL)
        print("waiting for the previous run's heartbeat to go stale", file=out, flush=True)
        await asyncio.sleep(max(0.2, stale_after / 3))
    if why is not None:
        raise RecoveryStopped(why, Outcome.GUARDRAIL)
    row = await journal.get(args.resume)
    assert row is not None
    plan = dict(row["plan"] or {})
    if not plan:
        raise RecoveryStopped(f"recovery {args.resume} journaled no plan to resume")
    if args.swap:
        plan["swap"] = True
    if args.yes:
        plan["confirmed"] = True
    return args.resume, plan


async def _open_row(
    args: argparse.Namespace, config: Config, journal: Journal, out: TextIO
) -> tuple[int, dict[str, Any]]:
    """A new journal row for the recovery the flags ask for (or the resumed one) and its plan."""
    if args.resume is not None:
        return await _resume_row(args, config, journal, out)
    if not args.instance or not args.to:
        raise RecoveryStopped("give --instance and --to (or --resume ID)", Outcome.GUARDRAIL)
    assert config.aws is not None
    region = args.region or config.aws.region
    try:
        when = engine.parse_time(args.to)
    except ValueError:
        raise RecoveryStopped(f"--to {args.to!r} is not an RFC 3339 time", Outcome.GUARDRAIL) from None
    target = RdsTarget(args.instance, region)
    labels = {"instance": args.instance, "region": region, "to": engine.iso(when) or args.to}
    mode = "dry-run" if args.dry_run else "enforce"
    action_id = await journal.store.run(op_start(journal.owner, target, labels, mode, time.time()))
    plan: dict[str, Any] = {
        "instance": args.instance,
        "region": region,
        "to": labels["to"],
        "recovered": engine.derived_identifier(args.instance, f"-recovery-{when:%Y%m%d}"),
        "old": engine.derived_identifier(args.instance, "-old"),
        "instance_class": args.instance_class,
        "swap": bool(args.swap),
        "confirmed": bool(args.yes),
        "steps": {},
    }
    await journal.set_plan(action_id, plan)
    print(f"recovery {action_id}: {args.instance} ({region}) to {labels['to']}", file=out, flush=True)
    return action_id, plan


async def recover(
    args: argparse.Namespace, config: Config, out: TextIO, confirm: Callable[[str], str]
) -> int:
    recovery = config.schema.recovery
    if recovery is None or config.aws is None:
        print("recover needs a recovery: section and an aws: section in the configuration", file=out)
        return 2
    journal = Journal(open_store(config.journal, timeout=config.schema.journal_timeout), _journal_owner())
    await journal.start()
    beat = asyncio.create_task(_heartbeat(journal, config.schema.replica_timeout))
    action_id: int | None = None
    try:
        action_id, plan = await _open_row(args, config, journal, out)
        ctx = Context(config, recovery, RdsApi(config.aws), journal, action_id, plan, out, bool(args.dry_run))
        await run_steps(ctx, confirm)
        outcome = Outcome.DRY_RUN if ctx.dry_run else Outcome.SUCCEEDED
        await journal.finish(action_id, outcome, {"steps": sorted(plan["steps"])})
        print(f"recovery {action_id}: {outcome.value}", file=out, flush=True)
        return 0
    except RecoveryStopped as exc:
        print(f"stopped: {exc}", file=out, flush=True)
        if action_id is not None:
            await journal.finish(action_id, exc.outcome, None, str(exc))
        return 2 if exc.outcome is Outcome.GUARDRAIL else 1
    except Exception as exc:
        print(f"failed: {type(exc).__name__}: {exc}", file=out, flush=True)
        if action_id is not None:
            await journal.finish(action_id, Outcome.FAILED, None, f"{type(exc).__name__}: {exc}")
            print(
                f"fix the cause, then: pgwarden-responder recover --config ... --resume {action_id}", file=out
            )
        return 1
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        await journal.close()


def _ask(prompt: str) -> str:
    if not sys.stdin.isatty():
        return ""
    return input(prompt)


def main(
    argv: list[str],
    registry: ActionRegistry | None = None,
    out: TextIO | None = None,
    confirm: Callable[[str], str] = _ask,
) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, "logfmt")
    try:
        config = load_config(args.config, registry or default_registry())
    except ConfigError as exc:
        return print_config_errors(str(args.config), exc.errors)
    return asyncio.run(recover(args, config, out or sys.stdout, confirm))
