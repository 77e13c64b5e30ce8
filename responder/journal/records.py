"""What the journal stores and returns, and the transaction handle the operations run on."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pgwarden.redact import redact
from responder.outcomes import Outcome, State

T = TypeVar("T")

COLUMNS = (
    "id, created_at, updated_at, owner, playbook, action, mode, alertname, fingerprint, starts_at, "
    "alert_status, target, target_key, state, outcome, dedup_key, duplicate_of, labels, plan, result, error, "
    "started_at, finished_at, decided_by"
)


class JournalUnavailable(Exception):
    """The store cannot be read or written; the webhook answers 503 so Alertmanager retries. Its message
    (logged, printed) never shows a password, whatever the driver's error quoted."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


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


class _Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    @property
    def rowcount(self) -> int: ...


@dataclass
class Tx:
    """One transaction on either store; SQL is written with `?` placeholders."""

    conn: Any
    postgres: bool
    _now: float | None = None

    def now(self) -> float:
        """The time every comparison of this transaction uses: with PostgreSQL the database's `now()` (one
        clock for all replicas), with SQLite (one process) this process's clock."""
        if not self.postgres:
            return time.time()
        if self._now is None:
            self._now = float(self.execute("SELECT extract(epoch FROM now())::float8").fetchone()[0])
        return self._now

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        if self.postgres:
            sql = sql.replace("?", "%s")
        cur: _Cursor = self.conn.execute(sql, tuple(params))
        return cur

    def lock(self, key: str) -> None:
        """Serialise writers on `key` until the end of the transaction (SQLite: already serialised)."""
        if self.postgres:
            self.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (key,))


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
