"""`require_approval:` of a playbook or a schedule, resolved: whether it waits, and for how many approvers."""

from __future__ import annotations

from typing import Any

from pgwarden.config import Errors
from responder.config.schema import ApprovalsSchema
from responder.core import ActionSpec


def approvals_needed(
    where: str, given: bool | ApprovalsSchema | None, spec: ActionSpec[Any], approvers: int, errors: Errors
) -> tuple[bool, int]:
    """(requires approval, different approvers needed): `true` is one approval, `{approvals: n}` is n, which
    no more than the configured approvers can give; unset is the action's default."""
    if given is None:
        return spec.requires_approval_by_default, 1
    if isinstance(given, bool):
        return given, 1
    if given.approvals > approvers:
        errors.add(
            f"{where}.require_approval.approvals",
            f"{given.approvals} approvals needed but {approvers} approver(s) configured (approvers:)",
        )
    return True, given.approvals
