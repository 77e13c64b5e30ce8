"""A decision's life in one vocabulary: what triggered it, and what was decided (journaled or not yet).

A trigger is an alert (Alertmanager's webhook), a schedule's tick (or its "run now"), or an operator's command
(`pgwarden-responder recover`, the coming `migrate`). A `Decision` is what the responder decided for one trigger
and one playbook (or for none: unmatched, resolved, rejected): it is journaled once (`id` is then set), and a
queued one is run (`responder.runs.Run`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from responder.outcomes import Outcome, State
from responder.targets import Target


@dataclass(frozen=True, slots=True)
class AlertTrigger:
    """An Alertmanager alert, or what could be read of a rejected one."""

    alertname: str
    fingerprint: str
    starts_at: str
    status: str  # firing | resolved (as sent, for a rejected alert)
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ScheduleTrigger:
    """A schedule's tick at `at` (RFC 3339, milliseconds), or a run asked for now; `labels` name its target."""

    schedule: str
    at: str
    labels: Mapping[str, str]
    run_now: bool = False


@dataclass(frozen=True, slots=True)
class OperatorTrigger:
    """An operator's command (`recover`) about `subject` (an instance), for the time `at` it names."""

    command: str
    subject: str
    at: str
    labels: Mapping[str, str]


Trigger = AlertTrigger | ScheduleTrigger | OperatorTrigger


@dataclass(frozen=True, slots=True)
class Decision:
    """What was decided for `trigger`: a playbook's action on a target (queued, pending approval, or running
    at once for an operator), or an outcome at once (`done`). `id` is None until it is journaled; a decision the
    journal found already taken comes back done/duplicate, `duplicate_of` the one that holds its key."""

    trigger: Trigger
    state: State
    playbook: str | None = None
    action: str | None = None
    mode: str | None = None
    target: Target | None = None
    outcome: Outcome | None = None
    dedup_key: str | None = None
    error: str | None = None
    id: int | None = None
    duplicate_of: int | None = None
    params_digest: str | None = None  # the playbook's params when decided (Playbook.params_digest)

    @property
    def action_id(self) -> int:
        """The id the journal gave this decision; ValueError before it is journaled."""
        if self.id is None:
            raise ValueError("the decision is not journaled yet")
        return self.id
