"""The states a journaled decision goes through and the outcomes it ends with, in one vocabulary.

The journal's SQL, the `pgwarden_responder_actions_total` metric, the decision log line and `/actions` all use
these values; `sql_list` writes a set of them as an SQL literal list (they are constants, never user input).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class State(StrEnum):
    """Where a decision is: waiting for approval, waiting to run, running, or done with an outcome."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


class Outcome(StrEnum):
    """How a decision ended. The first seven are the SPEC's; `pending` is counted when one starts waiting."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DRY_RUN = "dry_run"
    DUPLICATE = "duplicate"
    COOLDOWN = "cooldown"
    GUARDRAIL = "guardrail"
    NO_TARGET = "no_target"
    PENDING = "pending"
    REJECTED = "rejected"
    EXPIRED = "expired"
    INTERRUPTED = "interrupted"
    # Alerts no playbook acts on: journaled and logged, not counted as playbook decisions.
    UNMATCHED = "unmatched"
    RESOLVED = "resolved"

    @property
    def counted(self) -> bool:
        """Whether `pgwarden_responder_actions_total` counts it."""
        return self not in (Outcome.UNMATCHED, Outcome.RESOLVED)


class Answer(StrEnum):
    """What an approval or rejection request found."""

    APPROVED = "approved"
    REJECTED = "rejected"
    NOT_FOUND = "not_found"
    NOT_PENDING = "not_pending"
    EXPIRED = "expired"
    RECORDED = "approval_recorded"  # the two-person rule: this approval counted, another approver's is needed
    ALREADY_APPROVED = "already_approved"  # this approver's approval was counted already: it counts once
    LINK_USED = "link_used"  # an approval link decides once: this one has


# Outcomes that count as "acted (or would have)" for cooldown and the daily cap.
ACTED_OUTCOMES = (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.DRY_RUN)
# States of a decision that some replica still owes an outcome.
OPEN_STATES = (State.QUEUED, State.RUNNING)
# Every outcome the actions metric counts, in the SPEC's order.
COUNTED_OUTCOMES = tuple(o for o in Outcome if o.counted)


def sql_list(values: Iterable[StrEnum]) -> str:
    """`('a', 'b')`: an SQL list literal of enum values, for `IN` clauses."""
    return "(" + ", ".join(f"'{v.value}'" for v in values) + ")"
