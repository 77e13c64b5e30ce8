"""grow_storage: raise AllocatedStorage (or, with storage autoscaling, MaxAllocatedStorage) by a bounded step.

new size = max(ceil(current x (1 + increase_percent/100)), ceil(current x 1.1)), capped at max_allocated_gib
and 65536 GiB; when the cap leaves less than ceil(current x 1.1) it refuses (RDS refuses a change under 10%). Refuses unless the instance is `available` (so also during
`storage-optimization`), within 6 hours of the last storage change, and after 4 changes in 24 hours; the
history comes from the journal (succeeded grow_storage actions on the same instance), so it holds across
replicas and restarts.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction

from pydantic import Field

from responder.core import ActionContext, ActionParams, ActionResult, ActionSpec, GuardrailRefused, TargetKind
from responder.effects import ApiCall
from responder.outcomes import Outcome
from responder.rds_guards import instance_after, rds_of, require_modifiable

RDS_MAX_GIB = 65536
MIN_INTERVAL = 6 * 3600.0
MAX_CHANGES_PER_DAY = 4


class GrowStorageParams(ActionParams):
    increase_percent: float = Field(default=25.0, gt=0, le=1000)
    max_allocated_gib: int = Field(default=RDS_MAX_GIB, ge=20, le=RDS_MAX_GIB)
    apply_immediately: bool = True


def grown(current: int, increase_percent: float, cap: int) -> int:
    """Exact arithmetic: 100 GiB at 10% is 110, not 111 (100 * 1.1 is 110.00000000000001 in floats).

    Refuses (GuardrailRefused) when the cap leaves less than RDS's minimum step, ceil(current x 1.1): RDS
    would reject the change anyway, and the action would end `failed`."""
    pct = Fraction(str(increase_percent))
    by_percent = math.ceil(Fraction(current) * (100 + pct) / 100)
    floor = math.ceil(Fraction(current) * Fraction(11, 10))
    limit = min(cap, RDS_MAX_GIB)
    if current >= limit:
        raise GuardrailRefused(f"{current} GiB is already at the cap {limit} GiB")
    if limit < floor:
        raise GuardrailRefused(
            f"the cap {limit} GiB leaves less than RDS's minimum increase of 10% ({current} -> {floor} GiB)"
        )
    return min(max(by_percent, floor), limit)


async def run(ctx: ActionContext[GrowStorageParams]) -> ActionResult:
    params = ctx.params
    target, rds = rds_of(ctx)
    inst = await rds.describe_instance(target.identifier, target.region)
    if inst.get("DBInstanceStatus") == "storage-optimization":
        raise GuardrailRefused("storage optimization from the last change is still running")
    require_modifiable(inst)
    now = time.time()
    history = await ctx.history(Outcome.SUCCEEDED, now - 86400)
    if history and history[0] > now - MIN_INTERVAL:
        hours = (now - history[0]) / 3600
        raise GuardrailRefused(f"last storage change was {hours:.1f}h ago; RDS allows one per 6h")
    if len(history) >= MAX_CHANGES_PER_DAY:
        raise GuardrailRefused(f"{len(history)} storage changes in the last 24h")
    current = int(inst["AllocatedStorage"])
    ceiling = inst.get("MaxAllocatedStorage")
    cap = min(params.max_allocated_gib, RDS_MAX_GIB)
    if ceiling is not None and int(ceiling) > current:
        # Storage autoscaling is on: RDS grows by max(10 GiB, 10%) itself, unless the ceiling is in the way.
        ceiling = int(ceiling)
        step = max(10, math.ceil(current / 10))
        if ceiling - current >= step:
            raise GuardrailRefused(f"storage autoscaling has headroom up to {ceiling} GiB: leaving it to RDS")
        new_ceiling = grown(ceiling, params.increase_percent, cap)
        change = {"MaxAllocatedStorage": new_ceiling}
        plan = {
            "instance": target.identifier,
            "field": "MaxAllocatedStorage",
            "from": ceiling,
            "to": new_ceiling,
        }
    else:
        new_size = grown(current, params.increase_percent, cap)
        change = {"AllocatedStorage": new_size}
        plan = {"instance": target.identifier, "field": "AllocatedStorage", "from": current, "to": new_size}
    await ctx.save_plan(plan)
    api = ApiCall(
        "ModifyDBInstance",
        target.region,
        {"DBInstanceIdentifier": target.identifier, "ApplyImmediately": params.apply_immediately, **change},
    )
    answer = await ctx.gate.aws(rds, api)
    if answer is None:
        return {"would_change": change}
    after = await instance_after(ctx, answer)
    ctx.log.info("storage grown", extra={"instance": target.identifier, **change})
    return {
        "before": {"allocated_gib": current, "max_allocated_gib": inst.get("MaxAllocatedStorage")},
        "after": {
            "allocated_gib": after.get("AllocatedStorage"),
            "max_allocated_gib": after.get("MaxAllocatedStorage"),
        },
    }


SPEC = ActionSpec(
    params_model=GrowStorageParams,
    target_kind=TargetKind.RDS,
    run=run,
    changes_instance=True,
    description="grow allocated storage (or the autoscaling ceiling) by a bounded step",
)
