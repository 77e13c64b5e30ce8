"""scale_instance: one step up a configured ladder of instance classes, never down, never past max_class.

Refuses unless the instance is `available` with no pending modifications: ApplyImmediately would apply those
pending changes too, and nobody asked for them at 3 a.m.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from responder.playbooks.base import (
    ActionContext,
    ActionParams,
    ActionSpec,
    GuardrailRefused,
    RdsTarget,
    TargetKind,
)


class ScaleInstanceParams(ActionParams):
    ladder: tuple[str, ...] = Field(min_length=2)
    max_class: str
    apply_immediately: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> ScaleInstanceParams:
        if len(set(self.ladder)) != len(self.ladder):
            raise ValueError("ladder has a class twice")
        if self.max_class not in self.ladder:
            raise ValueError(f"max_class {self.max_class!r} is not on the ladder")
        return self


def pending_changes(instance: dict[str, Any]) -> dict[str, Any]:
    pending = instance.get("PendingModifiedValues") or {}
    return {k: v for k, v in pending.items() if v not in (None, [], {}, "")}


def next_class(params: ScaleInstanceParams, current: str) -> str:
    if current not in params.ladder:
        raise GuardrailRefused(f"instance class {current} is not on the ladder")
    index = params.ladder.index(current)
    if index >= params.ladder.index(params.max_class):
        raise GuardrailRefused(
            f"instance class {current} is already at or above max_class {params.max_class}"
        )
    return params.ladder[index + 1]


async def run(ctx: ActionContext) -> dict[str, Any]:
    params: ScaleInstanceParams = ctx.params
    target = ctx.target
    assert isinstance(target, RdsTarget) and ctx.rds is not None
    before = await ctx.rds.describe_instance(target.identifier, target.region)
    status = before.get("DBInstanceStatus")
    if status != "available":
        raise GuardrailRefused(f"instance status is {status!r}, not 'available'")
    pending = pending_changes(before)
    if pending:
        raise GuardrailRefused(
            f"instance has pending modifications {sorted(pending)}: ApplyImmediately would apply them"
        )
    current = str(before.get("DBInstanceClass"))
    new = next_class(params, current)
    plan = {
        "instance": target.identifier,
        "region": target.region,
        "from": current,
        "to": new,
        "apply_immediately": params.apply_immediately,
    }
    await ctx.save_plan(plan)
    if ctx.dry_run:
        return {"would_scale": {"from": current, "to": new}}
    await ctx.rds.modify_instance(
        target.identifier, target.region, DBInstanceClass=new, ApplyImmediately=params.apply_immediately
    )
    after = await ctx.rds.describe_instance(target.identifier, target.region)
    ctx.log.info("instance scaled", extra={"instance": target.identifier, "from": current, "to": new})
    return {
        "before": {"class": current, "status": status},
        "after": {
            "class": after.get("DBInstanceClass"),
            "status": after.get("DBInstanceStatus"),
            "pending": pending_changes(after),
        },
    }


SPEC = ActionSpec(
    name="scale_instance",
    params_model=ScaleInstanceParams,
    target_kind=TargetKind.RDS,
    run=run,
    requires_approval_by_default=True,
    description="one step up the instance class ladder",
)
