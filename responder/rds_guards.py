"""The guards every action that modifies an RDS instance applies before it asks for a change.

A modification with ApplyImmediately applies every pending modification too, and nobody asked for those at
3 a.m.; and RDS refuses (or queues) changes to an instance that is not `available`.
"""

from __future__ import annotations

from typing import Any

from responder.aws import RdsApi
from responder.core import ActionContext, GuardrailRefused, RdsTarget


def rds_of(ctx: ActionContext[Any]) -> tuple[RdsTarget, RdsApi]:
    """The instance an RDS action acts on and the client to reach it (the dispatcher gives both)."""
    target = ctx.target
    if not isinstance(target, RdsTarget) or ctx.rds is None:
        raise TypeError("an RDS action needs an RDS target and an aws: section")
    return target, ctx.rds


def pending_changes(instance: dict[str, Any]) -> dict[str, Any]:
    """The instance's PendingModifiedValues that hold something."""
    pending = instance.get("PendingModifiedValues") or {}
    return {k: v for k, v in pending.items() if v not in (None, [], {}, "")}


def require_modifiable(instance: dict[str, Any]) -> None:
    """Refuse unless the instance is `available` with no pending modifications."""
    status = instance.get("DBInstanceStatus")
    if status != "available":
        raise GuardrailRefused(f"instance status is {status!r}, not 'available'")
    pending = pending_changes(instance)
    if pending:
        raise GuardrailRefused(
            f"instance has pending modifications {sorted(pending)}: ApplyImmediately would apply them"
        )


async def instance_after(ctx: ActionContext[Any], answer: dict[str, Any]) -> dict[str, Any]:
    """The instance after a change that was made: described again, or (AWS throttling, an outage) as the
    change's own answer gave it. A change that was made is never reported as failed for want of a read."""
    target, rds = rds_of(ctx)
    try:
        return await rds.describe_instance(target.identifier, target.region)
    except Exception as exc:
        ctx.log.warning(
            "instance not described after the change; its answer is reported",
            extra={"instance": target.identifier, "error": f"{type(exc).__name__}: {exc}"},
        )
        return dict(answer.get("DBInstance") or {})
