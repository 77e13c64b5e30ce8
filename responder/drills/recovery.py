"""The steps of a guided point-in-time recovery (`pgwarden-responder recover`, in `responder.recover`).

window → restore → settings (only when it will be swapped in) → compare; the swap is in
`responder.drills.swap`, the order of the steps in `responder.recover.run_steps`.
Each step, and each part of the swap, is journaled as done in the plan when it is (`Context.finish_step`), so
a resumed recovery skips what is done; the renames and the restore also look at RDS first, so a step done but
not journaled (a crash in between) is not done twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from responder.aws import RdsApi
from responder.config import Config
from responder.core import RdsTarget
from responder.drills import checks, engine
from responder.drills.models import ConnectSpec, RecoverySchema
from responder.effects import RECOVERY_TAG, ApiCall, EffectGate
from responder.journal import Journal
from responder.outcomes import Outcome

ACTION = "recover"
RESTORE_SETTINGS = (
    "MultiAZ",
    "DeletionProtection",
    "DBParameterGroupName",
    "OptionGroupName",
    "StorageType",
    "Iops",
    "StorageThroughput",
    "BackupRetentionPeriod",
    "CopyTagsToSnapshot",
    "CACertificateIdentifier",
)
# ... and those only ModifyDBInstance takes, made once the recovered instance is available.
MODIFY_SETTINGS = (
    "MonitoringInterval",
    "MonitoringRoleArn",
    "EnablePerformanceInsights",
    "PerformanceInsightsKMSKeyId",
    "PerformanceInsightsRetentionPeriod",
)
PROVISIONED_GP3_FROM_GIB = (
    400  # below this, RDS refuses Iops/StorageThroughput for gp3 (they are the baseline)
)


class RecoveryStopped(Exception):
    """A step cannot go on; the message says why and what to do. `outcome` is what the journal records."""

    def __init__(self, message: str, outcome: Outcome = Outcome.FAILED) -> None:
        super().__init__(message)
        self.outcome = outcome


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
    gate: EffectGate
    confirmed: bool = False  # `--yes` on this very invocation, with `--swap` (never read from the plan)

    @property
    def target(self) -> RdsTarget:
        return RdsTarget(self.plan["instance"], self.plan["region"])

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def done(self, step: str) -> bool:
        return bool(self.plan["steps"].get(step, {}).get("done"))

    async def finish_step(self, step: str, **detail: Any) -> None:
        self.plan["steps"][step] = {"done": True, "at": engine.iso(datetime.now(UTC)), **detail}
        await self.gate.save_plan(self.plan)


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
            "settings": production_settings(instance),
        },
    )


def production_settings(instance: dict[str, Any]) -> dict[str, Any]:
    """The settings of production (a DescribeDBInstances entry) as restore and modify parameters, for the
    instance that will replace it."""
    groups = instance.get("DBParameterGroups") or []
    options = instance.get("OptionGroupMemberships") or []
    storage = instance.get("StorageType")
    provisioned = storage in ("io1", "io2") or (
        storage == "gp3" and int(instance.get("AllocatedStorage") or 0) >= PROVISIONED_GP3_FROM_GIB
    )
    monitoring = int(instance.get("MonitoringInterval") or 0)
    insights = bool(instance.get("PerformanceInsightsEnabled"))
    settings: dict[str, Any] = {
        "MultiAZ": instance.get("MultiAZ"),
        "DeletionProtection": instance.get("DeletionProtection"),
        "DBParameterGroupName": _custom(
            groups[0].get("DBParameterGroupName") if groups else None, "default."
        ),
        "OptionGroupName": _custom(options[0].get("OptionGroupName") if options else None, "default:"),
        "StorageType": storage,
        "Iops": instance.get("Iops") if provisioned else None,
        "StorageThroughput": instance.get("StorageThroughput") if provisioned and storage == "gp3" else None,
        "BackupRetentionPeriod": instance.get("BackupRetentionPeriod"),
        "CopyTagsToSnapshot": instance.get("CopyTagsToSnapshot"),
        "CACertificateIdentifier": instance.get("CACertificateIdentifier"),
        # a restored instance starts without enhanced monitoring and Performance Insights: set only what is on
        "MonitoringInterval": monitoring or None,
        "MonitoringRoleArn": instance.get("MonitoringRoleArn") if monitoring else None,
        "EnablePerformanceInsights": insights or None,
        "PerformanceInsightsKMSKeyId": instance.get("PerformanceInsightsKMSKeyId") if insights else None,
        "PerformanceInsightsRetentionPeriod": (
            instance.get("PerformanceInsightsRetentionPeriod") if insights else None
        ),
    }
    return {k: v for k, v in settings.items() if v is not None and v != ""}


def _custom(group: str | None, default_prefix: str) -> str | None:
    """A parameter or option group to copy; None for the engine's default one, which the restore gets anyway
    (and which may not be named for the restored engine version)."""
    return None if group is None or group.startswith(default_prefix) else group


async def _settings(ctx: Context) -> dict[str, Any]:
    """Production's settings as journaled by the window step (read again for a plan journaled without them,
    while production still has its name)."""
    production = ctx.plan["steps"]["window"]["production"]
    if "settings" not in production:
        instance = await engine.describe(ctx.rds, ctx.target.identifier, ctx.target.region)
        production["settings"] = production_settings(instance)
    return dict(production["settings"])


def _restore_api(ctx: Context, settings: dict[str, Any]) -> ApiCall:
    """The restore; with production's restore settings when the recovered instance will be swapped in."""
    production = ctx.plan["steps"]["window"]["production"]
    r = ctx.recovery
    options = engine.RestoreOptions(
        ctx.plan.get("instance_class") or r.instance_class or production["class"],
        r.db_subnet_group or production["subnet_group"],
        r.vpc_security_group_ids or tuple(production["vpc_security_group_ids"]),
    )
    when = engine.parse_time(ctx.plan["to"])
    source = engine.Source("point_in_time", ctx.target.region, when, restore_time=when)
    tags = {RECOVERY_TAG: str(ctx.action_id)}
    copied = {k: v for k, v in settings.items() if k in RESTORE_SETTINGS} if ctx.plan["swap"] else None
    return engine.restore_call(source, ctx.target.identifier, ctx.plan["recovered"], options, tags, copied)


async def step_restore(ctx: Context) -> None:
    recovered, region = ctx.plan["recovered"], ctx.target.region
    existing = await engine.find(ctx.rds, recovered, region)
    copied = False
    if existing is not None:
        if engine.tags_of(existing).get(RECOVERY_TAG) != str(ctx.action_id):
            raise RecoveryStopped(
                f"{recovered} already exists and is not this recovery's: rename or delete it"
            )
        ctx.say(f"[2/4] restore: {recovered} was already requested by this recovery")
    else:
        api = _restore_api(ctx, await _settings(ctx))
        ctx.say(f"[2/4] restore: {api.operation} to {recovered} ({api.params.get('DBInstanceClass')})")
        await ctx.gate.aws(ctx.rds, api)
        copied = bool(ctx.plan["swap"])

    async def progress(status: str, elapsed: float) -> None:
        ctx.say(f"      {recovered}: {status} ({elapsed:.0f} s)")

    try:
        seconds, _ = await engine.wait_available(
            ctx.rds, recovered, region, ctx.recovery.wait_timeout, progress
        )
    except engine.DrillError as exc:
        raise RecoveryStopped(f"{exc}; resume with --resume {ctx.action_id}") from exc
    ctx.say(f"      {recovered} is available after {seconds:.0f} s")
    await ctx.finish_step("restore", restore_seconds=round(seconds, 3), copied_settings=copied)


def _settings_changes(ctx: Context, settings: dict[str, Any]) -> dict[str, Any]:
    """What ModifyDBInstance must still set on the recovered instance: the settings the restore does not take,
    or all of them when the restore was made without them (a recovery resumed with --swap)."""
    restore = ctx.plan["steps"].get("restore") or {}
    if restore.get("copied_settings"):
        return {k: v for k, v in settings.items() if k in MODIFY_SETTINGS}
    return {k: v for k, v in settings.items() if k in RESTORE_SETTINGS + MODIFY_SETTINGS}


def _modify_api(ctx: Context, changes: dict[str, Any]) -> ApiCall:
    params = {"DBInstanceIdentifier": ctx.plan["recovered"], "ApplyImmediately": True, **changes}
    return ApiCall("ModifyDBInstance", ctx.target.region, params)


async def step_settings(ctx: Context) -> None:
    """Give the recovered instance production's settings the restore could not set, before it is compared."""
    changes = _settings_changes(ctx, await _settings(ctx))
    recovered = ctx.plan["recovered"]
    if changes:
        ctx.say(f"      settings of production for {recovered}: {', '.join(sorted(changes))}")
        await ctx.gate.aws(ctx.rds, _modify_api(ctx, changes))
        try:
            await engine.wait_available(ctx.rds, recovered, ctx.target.region, ctx.recovery.wait_timeout)
        except engine.DrillError as exc:
            raise RecoveryStopped(f"{exc}; resume with --resume {ctx.action_id}") from exc
    await ctx.finish_step("settings", changed=sorted(changes))


def connect_dsn(connect: ConnectSpec) -> str:
    dsn = os.environ.get(connect.dsn_env, "").strip()
    if not dsn:
        raise RecoveryStopped(f"recovery.connect.dsn_env: environment variable {connect.dsn_env} is not set")
    return dsn


async def _checks_on(ctx: Context, identifier: str) -> list[dict[str, Any]]:
    instance = await engine.describe(ctx.rds, identifier, ctx.target.region)
    connect = ctx.recovery.connect
    conninfo = checks.check_conninfo(connect_dsn(connect), connect, engine.endpoint_of(instance))
    return await checks.run_checks(conninfo, connect, ctx.recovery.checks)


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
    passed = bool(recovered) and all(c["passed"] for c in recovered)  # no check is no proof
    await ctx.finish_step("compare", recovered=recovered, production=production, passed=passed)


def _shown(check: dict[str, Any]) -> str:
    return "error" if check.get("error") else str(check["value"])


def rename_api(old: str, new: str, region: str) -> ApiCall:
    params = {"DBInstanceIdentifier": old, "NewDBInstanceIdentifier": new, "ApplyImmediately": True}
    return ApiCall("ModifyDBInstance", region, params)


def dry_run_plan(ctx: Context) -> list[dict[str, Any]]:
    """Every call and hook the recovery would make, in order."""
    ident, recovered, old, region = (
        ctx.target.identifier,
        ctx.plan["recovered"],
        ctx.plan["old"],
        ctx.target.region,
    )
    settings = ctx.plan["steps"]["window"]["production"].get("settings") or {}
    calls: list[dict[str, Any]] = [_restore_api(ctx, settings).describe()]
    calls.append(
        {
            "operation": "DescribeDBInstances (poll until available)",
            "params": {"DBInstanceIdentifier": recovered},
        }
    )
    changes = {k: v for k, v in settings.items() if k in MODIFY_SETTINGS}
    if ctx.plan["swap"] and changes:
        calls.append(_modify_api(ctx, changes).describe())
    names = [c.name for c in ctx.recovery.checks]
    calls.append({"checks": names, "on": [recovered, ident]})
    if ctx.plan["swap"]:
        hooks = ctx.recovery.hooks
        calls.append({"hook": "maintenance_on", "argv": list(hooks.maintenance_on)})
        calls.append({"drain": {"max_connections": ctx.recovery.drain.max_connections}})
        calls.append(rename_api(ident, old, region).describe())
        calls.append(rename_api(recovered, ident, region).describe())
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
