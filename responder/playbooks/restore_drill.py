"""restore_drill: restore the latest backup to a small, tagged test instance, prove it with SQL checks, delete it.

The runbook's weekly drill, done by the responder: choose the source → restore to `<id>-drill-<yyyymmddhhmm>`
(tagged `pgwarden:drill=<action id>`, `pgwarden:expires=<unix time>`) → wait until `available` (the measured
RTO) → run every check under a statement timeout → delete, in every case (success, failure, timeout,
cancellation). Each step is journaled in the plan as it happens. Deletion refuses an untagged instance; what a
killed process leaves behind, the sweeper deletes (`responder.drills.sweeper`).
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, field_validator, model_validator

from pgwarden.durations import Duration
from responder.core import ActionContext, ActionFailed, ActionParams, ActionResult, ActionSpec, TargetKind
from responder.drills import checks, engine
from responder.drills.models import Check, ConnectSpec, PointInTime, SourceKind, unique_names
from responder.effects import DRILL_TAG, EXPIRES_TAG
from responder.rds_guards import rds_of

DEFAULT_CLASS = "db.t3.medium"


class RestoreDrillParams(ActionParams):
    source: SourceKind = "latest_snapshot"
    point_in_time: PointInTime | None = None
    region: str | None = None  # cross_region_copy: the region holding the copies, restored there
    instance_class: str = DEFAULT_CLASS
    db_subnet_group: str | None = None
    vpc_security_group_ids: tuple[str, ...] = ()
    wait_timeout: Duration = Field(default=7200.0, gt=0)
    max_lifetime: Duration = Field(default=14400.0, gt=0)
    connect: ConnectSpec
    checks: tuple[Check, ...] = Field(min_length=1)

    _unique = field_validator("checks")(unique_names)

    @model_validator(mode="after")
    def _consistent(self) -> RestoreDrillParams:
        if self.source == "cross_region_copy" and self.region is None:
            raise ValueError("source cross_region_copy needs region")
        if self.wait_timeout >= self.max_lifetime:
            raise ValueError("wait_timeout must be shorter than max_lifetime")
        return self


class _Report:
    """The plan as it grows: one entry per step, journaled after each."""

    def __init__(self, ctx: ActionContext[RestoreDrillParams], plan: dict[str, Any]) -> None:
        self.ctx = ctx
        self.plan = plan
        plan["steps"] = []

    async def step(self, name: str, **detail: Any) -> None:
        self.plan["steps"].append({"step": name, "at": engine.iso(datetime.now(UTC)), **detail})
        await self.ctx.save_plan(self.plan)


async def run(ctx: ActionContext[RestoreDrillParams]) -> ActionResult:
    params = ctx.params
    target, rds = rds_of(ctx)
    began = time.time()
    now = datetime.fromtimestamp(began, UTC)
    source = await engine.choose_source(
        rds, target.identifier, target.region, params.source, params.point_in_time, params.region
    )
    drill = engine.drill_instance_name(target.identifier, now)
    expires = int(began + params.max_lifetime)
    tags = {DRILL_TAG: str(ctx.action_id), EXPIRES_TAG: str(expires)}
    options = engine.RestoreOptions(
        params.instance_class, params.db_subnet_group, params.vpc_security_group_ids
    )
    api = engine.restore_call(source, target.identifier, drill, options, tags)
    rpo = round(began - source.recovery_point.timestamp(), 3)
    result: dict[str, Any] = {
        "dbidentifier": target.identifier,
        "source": params.source,
        "drill_instance": drill,
        "region": source.region,
        "instance_class": params.instance_class,
        "recovery_point": engine.iso(source.recovery_point),
        "recovery_point_age_seconds": rpo,
        "restore_seconds": None,
        "checks": [],
        "deleted": False,
    }
    plan = {**result, "source_detail": source.describe(), "expires_at": expires, "restore": api.describe()}
    plan.pop("checks")
    plan.pop("deleted")
    plan.pop("restore_seconds")
    report = _Report(ctx, plan)
    await report.step("source chosen", source=source.describe())
    if ctx.dry_run:
        await ctx.gate.aws(rds, api)  # journaled in the plan, not made
        return {"would_restore": api.describe(), "checks": [c.name for c in params.checks]}
    dsn = os.environ.get(params.connect.dsn_env, "").strip()
    if not dsn:
        raise ActionFailed(
            f"environment variable {params.connect.dsn_env} is not set: nothing restored", result
        )
    try:
        await ctx.gate.aws(rds, api)
        await report.step("restore requested", instance=drill, operation=api.operation)
        seconds, instance = await engine.wait_available(
            rds, drill, source.region, min(params.wait_timeout, expires - time.time())
        )
        result["restore_seconds"] = round(seconds, 3)
        await report.step("available", restore_seconds=result["restore_seconds"])
        conninfo = checks.check_conninfo(dsn, params.connect, engine.endpoint_of(instance))
        result["checks"] = await checks.run_checks(conninfo, params.connect, params.checks)
        passed = sum(1 for c in result["checks"] if c["passed"])
        await report.step("checks run", passed=passed, total=len(result["checks"]))
    except Exception as exc:  # every failure ends the same way: delete, then report it
        result["error"] = str(exc) if isinstance(exc, engine.DrillError) else f"{type(exc).__name__}: {exc}"
    finally:
        # Also when the restore call itself failed (it may have been accepted), and shielded: a timeout or a
        # shutdown cancels the run, never the deletion.
        await asyncio.shield(_delete(ctx, report, result, drill, source.region))
    if "error" in result:
        raise ActionFailed(str(result["error"]), result)
    if not result["deleted"]:
        raise ActionFailed(f"drill instance {drill} not deleted: {result.get('delete_error')}", result)
    if (reason := checks.failed_check_reason(result["checks"])) is not None:
        raise ActionFailed(reason, result)
    ctx.log.info(
        "restore drill passed",
        extra={"instance": target.identifier, "restore_seconds": result["restore_seconds"], "rpo": rpo},
    )
    return result


async def _delete(
    ctx: ActionContext[RestoreDrillParams], report: _Report, result: dict[str, Any], drill: str, region: str
) -> None:
    rds = ctx.rds
    assert rds is not None
    try:
        answer = await engine.delete_owned_instance(ctx.gate, rds, drill, region)
        result["deleted"] = True
        await report.step("deleted", instance=drill, status=answer["status"])
    except Exception as exc:  # the sweeper retries; the outcome says so
        result["delete_error"] = f"{type(exc).__name__}: {exc}"
        ctx.log.error("drill instance not deleted", extra={"instance": drill, "error": str(exc)})
        await report.step("delete failed", instance=drill, error=result["delete_error"])


SPEC = ActionSpec(
    params_model=RestoreDrillParams,
    target_kind=TargetKind.RDS,
    run=run,
    description="restore the latest backup to a tagged test instance, run checks, delete it",
)
