"""What the webhook and the scheduler journal (`NewDecision`), and what comes back."""

from __future__ import annotations

from dataclasses import dataclass

from responder.outcomes import Outcome, State


@dataclass(frozen=True, slots=True)
class NewDecision:
    """One (alert, playbook) decision as the webhook journals it."""

    alertname: str
    fingerprint: str
    starts_at: str
    alert_status: str
    labels: dict[str, str]
    state: State  # queued | pending | done
    playbook: str | None = None
    action: str | None = None
    mode: str | None = None
    target: str | None = None
    target_key: str | None = None
    outcome: Outcome | None = None
    dedup_key: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    id: int
    state: State
    outcome: Outcome | None
    duplicate_of: int | None
    decision: NewDecision


@dataclass(frozen=True)
class ClaimResult:
    ok: bool
    outcome: Outcome | None = None
    reason: str | None = None
