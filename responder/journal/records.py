"""What the webhook and the scheduler journal (`NewDecision`), what comes back, and the journal's DDL."""

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


def schema(postgres: bool) -> list[str]:
    ident = "BIGSERIAL PRIMARY KEY" if postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"
    return [
        f"""CREATE TABLE IF NOT EXISTS pgwarden_actions (
            id {ident},
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            owner TEXT, playbook TEXT, action TEXT, mode TEXT,
            alertname TEXT NOT NULL, fingerprint TEXT NOT NULL, starts_at TEXT NOT NULL, alert_status TEXT NOT NULL,
            target TEXT, target_key TEXT, state TEXT NOT NULL, outcome TEXT,
            dedup_key TEXT UNIQUE, duplicate_of BIGINT,
            labels TEXT, plan TEXT, result TEXT, error TEXT,
            started_at DOUBLE PRECISION, finished_at DOUBLE PRECISION, decided_by TEXT)""",
        "CREATE INDEX IF NOT EXISTS pgwarden_actions_rate ON pgwarden_actions (playbook, target_key, started_at)",
        "CREATE INDEX IF NOT EXISTS pgwarden_actions_state ON pgwarden_actions (state)",
        "CREATE INDEX IF NOT EXISTS pgwarden_actions_hist ON pgwarden_actions (action, target_key, finished_at)",
        """CREATE TABLE IF NOT EXISTS pgwarden_replicas (
            owner TEXT PRIMARY KEY, seen_at DOUBLE PRECISION NOT NULL)""",
    ]
