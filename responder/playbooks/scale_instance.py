"""scale_instance: one step up a configured ladder of instance classes, never down, never past max_class.

Refuses unless the instance is `available` with no pending modifications: ApplyImmediately would apply those
pending changes too, and nobody asked for them at 3 a.m.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from responder.core import ActionContext, ActionParams, ActionResult, ActionSpec, GuardrailRefused, TargetKind
from responder.effects import ApiCall
from responder.rds_guards import instance_after, pending_changes, rds_of, require_modifiable


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


def next_class(params: ScaleInstanceParams, current: str) -> str:
    if current not in params.ladder:
        raise GuardrailRefused(f"instance class {current} is not on the ladder")
    index = params.ladder.index(current)
    if index >= params.ladder.index(params.max_class):
        raise GuardrailRefused(
            f"instance class {current} is already at or above max_class {params.max_class}"
        )
    return params.ladder[index + 1]


async def run(ctx: ActionContext[ScaleInstanceParams]) -> ActionResult:
    params = ctx.params
    target, rds = rds_of(ctx)
    before = await rds.describe_instance(target.identifier, target.region)
    require_modifiable(before)
    status = before.get("DBInstanceStatus")
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
    api = ApiCall(
        "ModifyDBInstance",
        target.region,
        {
            "DBInstanceIdentifier": target.identifier,
            "DBInstanceClass": new,
            "ApplyImmediately": params.apply_immediately,
        },
    )
    answer = await ctx.gate.aws(rds, api)
    if answer is None:
        return {"would_scale": {"from": current, "to": new}}
    after = await instance_after(ctx, answer)
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
    params_model=ScaleInstanceParams,
    target_kind=TargetKind.RDS,
    run=run,
    changes_instance=True,
    requires_approval_by_default=True,
    description="one step up the instance class ladder",
)
