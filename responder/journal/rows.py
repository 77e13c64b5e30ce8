"""What the journal returns: each row of `pgwarden_actions` as a frozen, typed `ActionRow` (its fields named after
the columns, its JSON columns decoded), and the filter the console and the reports search it with."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, assert_never

from responder.decision import AlertTrigger, Decision, OperatorTrigger, ScheduleTrigger, Trigger
from responder.outcomes import Outcome, State
from responder.targets import Target

COLUMNS = (
    "id, created_at, updated_at, owner, playbook, action, mode, alertname, fingerprint, starts_at, "
    "alert_status, target, target_key, state, outcome, dedup_key, duplicate_of, labels, plan, result, error, "
    "started_at, finished_at, decided_by, params_digest"
)


# The alert_status of the triggers that are not alerts (an alert's is firing or resolved).
SCHEDULED, RUN_NOW, MANUAL = "scheduled", "run", "manual"
SCHEDULE_FINGERPRINT = "schedule"


def trigger_columns(trigger: Trigger) -> tuple[str, str, str, str, Mapping[str, str]]:
    """A trigger as the journal's columns hold it: alertname, fingerprint, starts_at, alert_status, labels (the
    columns of the first releases, whose triggers were all alerts; `/actions` shows them as `alert`)."""
    match trigger:
        case AlertTrigger(alertname, fingerprint, starts_at, status, labels):
            return alertname, fingerprint, starts_at, status, labels
        case ScheduleTrigger(schedule, at, labels, run_now):
            return schedule, SCHEDULE_FINGERPRINT, at, RUN_NOW if run_now else SCHEDULED, labels
        case OperatorTrigger(command, subject, at, labels):
            return command, subject, at, MANUAL, labels
        case _:
            assert_never(trigger)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _object(text: str | None) -> dict[str, Any] | None:
    """A JSON column holding an object (a plan, a result), decoded; None when empty or not an object."""
    if not text:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None


def iso_ms(ts: float | None) -> str | None:
    """A journal time (Unix seconds) as RFC 3339 UTC with milliseconds, as `/actions` shows it."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Approval:
    """One approver's approval of a pending decision (the two-person rule counts them), on the journal's clock."""

    by: str
    at: float


@dataclass(frozen=True, slots=True)
class ActionRow:
    """One journaled decision as the journal holds it. Times are Unix seconds on the journal's clock."""

    id: int
    created_at: float
    updated_at: float
    owner: str | None  # the replica (or `recover` process) that journaled it last
    playbook: str | None
    action: str | None
    mode: str | None
    alertname: str
    fingerprint: str
    starts_at: str
    alert_status: str
    target: str | None  # as described when decided
    target_key: str | None
    state: State
    outcome: Outcome | None
    dedup_key: str | None
    duplicate_of: int | None
    labels: dict[str, str]
    plan: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    started_at: float | None
    finished_at: float | None
    decided_by: str | None
    approvals: tuple[Approval, ...] = ()  # in the order given (approvers', not a rejection)
    params_digest: str | None = None  # of the playbook's params when decided (None: journaled before v5)

    @classmethod
    def of(cls, values: Sequence[Any]) -> ActionRow:
        """The row of a `SELECT {COLUMNS}` (or `RETURNING {COLUMNS}`), on either store."""
        (id_, created, updated, owner, playbook, action, mode, alertname, fingerprint, starts_at, alert_status,
         target, target_key, state, outcome, dedup_key, duplicate_of, labels, plan, result, error, started,
         finished, decided_by, params_digest) = values  # fmt: skip
        return cls(
            int(id_), float(created), float(updated), owner, playbook, action, mode, alertname, fingerprint,
            starts_at, alert_status, target, target_key, State(state),
            Outcome(outcome) if outcome is not None else None, dedup_key,
            int(duplicate_of) if duplicate_of is not None else None, json.loads(labels) if labels else {},
            _object(plan), _object(result), error, _float(started), _float(finished), decided_by,
            params_digest=params_digest,
        )  # fmt: skip

    @property
    def trigger(self) -> Trigger:
        """What the decision was made for, read back from its columns (see `trigger_columns`)."""
        if self.alert_status == MANUAL:
            return OperatorTrigger(self.alertname, self.fingerprint, self.starts_at, self.labels)
        if self.alert_status in (SCHEDULED, RUN_NOW) and self.fingerprint == SCHEDULE_FINGERPRINT:
            return ScheduleTrigger(self.alertname, self.starts_at, self.labels, self.alert_status == RUN_NOW)
        return AlertTrigger(self.alertname, self.fingerprint, self.starts_at, self.alert_status, self.labels)

    def decision(self, target: Target | None = None) -> Decision:
        """The journaled decision this row holds, with `target` (resolved again from its labels) to act on."""
        return Decision(
            self.trigger, self.state, self.playbook, self.action, self.mode, target, self.outcome,
            self.dedup_key, self.error, self.id, self.duplicate_of, self.params_digest,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The row as `GET /actions` shows it (and as an action's `journal_rows` reads it)."""
        started, finished = self.started_at, self.finished_at
        return {
            "id": self.id,
            "playbook": self.playbook,
            "action": self.action,
            "mode": self.mode,
            "state": self.state,
            "outcome": self.outcome,
            "alert": {
                "alertname": self.alertname,
                "status": self.alert_status,
                "fingerprint": self.fingerprint,
                "startsAt": self.starts_at,
                "labels": self.labels,
            },
            "target": self.target,
            "plan": self.plan,
            "result": self.result,
            "error": self.error,
            "duplicate_of": self.duplicate_of,
            "decided_by": self.decided_by,
            "approvals": [{"by": a.by, "at": iso_ms(a.at)} for a in self.approvals],
            "replica": self.owner,
            "timings": {
                "journaled_at": iso_ms(self.created_at),
                "started_at": iso_ms(started),
                "finished_at": iso_ms(finished),
                "duration_seconds": (
                    round(finished - started, 3) if started is not None and finished is not None else None
                ),
            },
        }


@dataclass(frozen=True, slots=True)
class Claim:
    """What claiming one queued decision checks (`Journal.claim`): its playbook's `cooldown` and `max_per_day`
    on `target_key`, and `exclusive`, the actions of which at most one may run on a target at a time (across
    playbooks and replicas). With `release_key`, a refused claim gives its dedup key back, so a later delivery
    of the same alert decides again."""

    action_id: int
    playbook: str
    target_key: str
    cooldown: float
    max_per_day: int | None
    release_key: bool = False
    exclusive: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class ActionFilter:
    """Every given field must match; `since`/`until` bound `created_at` (Unix seconds)."""

    playbook: str | None = None
    action: str | None = None
    outcome: str | None = None
    state: str | None = None
    target: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 200
