"""The journal's schema, versioned: an ordered list of forward migrations, run when a store opens, under a lock.

`pgwarden_journal_schema` holds one row per migration applied (its version, when, what). A store that opens
takes the journal's lock (PostgreSQL: `pg_advisory_xact_lock`, held to the end of the transaction; SQLite: the
store's `BEGIN IMMEDIATE`), reads the version, applies every newer migration and records each, in that one
transaction: replicas starting together migrate once (the others find the work done when they get the lock),
and a migration that fails leaves the journal as it was. A journal newer than this code is refused
(`JournalTooNew`) rather than written by code that does not know its columns.

A journal made before the schema had versions (pgwarden_actions, no version table) is version 1, adopted as it
is: migration 1 is exactly the schema that code created.

Why a module of our own rather than SQLAlchemy Core + Alembic: the journal's SQL is a dozen hand-tuned
statements on two DB-API connections it already holds (a group-committing SQLite writer and a psycopg pool);
Alembic would bring SQLAlchemy engines alongside them, its own version table and environment scripts, and
still need our lock around `upgrade` for concurrent replicas and a dialect switch in every migration that is
not plain DDL. What migrations need here (an ordered list, a version row per step, a lock, a refusal of newer
journals) is this file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from responder.journal.outbox import v2_statements
from responder.journal.tx import JournalUnavailable, Tx

log = logging.getLogger("responder.journal")

VERSION_TABLE = "pgwarden_journal_schema"
# The PostgreSQL advisory lock a store takes while it opens (the key the unversioned schema was created under,
# so that a replica still running that code waits for a migration too).
LOCK_KEY = 7312001


class JournalTooNew(JournalUnavailable):
    """The journal's schema is newer than this code knows: it is not opened (an older release must not write
    columns it does not know of)."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"the journal's schema is version {found}, newer than version {known}, the newest this pgwarden"
            " knows: run a pgwarden release that knows it, or give this one another journal"
        )
        self.found = found
        self.known = known


@dataclass(frozen=True)
class Migration:
    """One step forward: `statements(postgres)` is its SQL for the store's dialect, run in order."""

    version: int
    description: str
    statements: Callable[[bool], list[str]]


def _v1(postgres: bool) -> list[str]:
    """The schema as the first releases created it (before it had versions)."""
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


def _v3(postgres: bool) -> list[str]:
    """The Slack requests already taken (their signatures, for the signature's five minutes and a margin): a
    request replayed to any replica is refused (responder.approvals.slack)."""
    return [
        """CREATE TABLE pgwarden_slack_requests (
            signature TEXT PRIMARY KEY, seen_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX pgwarden_slack_requests_seen ON pgwarden_slack_requests (seen_at)",
    ]


def _v4(postgres: bool) -> list[str]:
    """Approvals one by one (the two-person rule), approval links spent, console sessions (by hashed id)."""
    return [
        """CREATE TABLE pgwarden_approvals (
            action_id BIGINT NOT NULL, approver TEXT NOT NULL, approved_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (action_id, approver))""",
        """CREATE TABLE pgwarden_link_nonces (
            nonce TEXT PRIMARY KEY, action_id BIGINT NOT NULL, approver TEXT NOT NULL,
            spent_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX pgwarden_link_nonces_spent ON pgwarden_link_nonces (spent_at)",
        """CREATE TABLE pgwarden_sessions (
            id_hash TEXT PRIMARY KEY, principal TEXT NOT NULL, token_fingerprint TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX pgwarden_sessions_expiry ON pgwarden_sessions (expires_at)",
    ]


def _v5(postgres: bool) -> list[str]:
    """The digest of the params a decision was made with: an approval after they changed runs nothing."""
    return ["ALTER TABLE pgwarden_actions ADD COLUMN params_digest TEXT"]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "decisions (pgwarden_actions) and replicas", _v1),
    Migration(2, "notifications: the outbox (pgwarden_outbox) and the messages sent", v2_statements),
    Migration(3, "Slack requests taken (pgwarden_slack_requests), refused when replayed", _v3),
    Migration(4, "approvals, spent approval links and console sessions", _v4),
    Migration(5, "the digest of a decision's params (pgwarden_actions.params_digest)", _v5),
)


def _exists(tx: Tx, table: str) -> bool:
    if tx.postgres:
        return tx.execute("SELECT to_regclass(?) IS NOT NULL", (table,)).fetchone()[0] is True
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return tx.execute(sql, (table,)).fetchone() is not None


def schema_version(tx: Tx) -> int:
    """The journal's version: 0 when empty, 1 for a journal made before versions."""
    if _exists(tx, VERSION_TABLE):
        found = tx.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchone()[0]
        return int(found or 0)
    return 1 if _exists(tx, "pgwarden_actions") else 0


def _record(tx: Tx, migration: Migration, note: str = "") -> None:
    tx.execute(
        f"INSERT INTO {VERSION_TABLE} (version, applied_at, description) VALUES (?, ?, ?)",
        (migration.version, tx.now(), migration.description + note),
    )


def migrate(tx: Tx, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Bring the journal to the last of `migrations`, in this transaction, under the journal's lock; the
    versions applied (none when it was current). JournalTooNew when the journal is newer."""
    if tx.postgres:
        tx.execute("SELECT pg_advisory_xact_lock(?)", (LOCK_KEY,))
    known = migrations[-1].version if migrations else 0
    versioned = _exists(tx, VERSION_TABLE)
    found = schema_version(tx)
    if found > known:
        raise JournalTooNew(found, known)
    if versioned and found == known:
        return []  # current: nothing is written (a read-only journal still opens)
    applied: list[int] = []
    if not versioned:
        tx.execute(
            f"CREATE TABLE {VERSION_TABLE} (version INTEGER PRIMARY KEY,"
            " applied_at DOUBLE PRECISION NOT NULL, description TEXT NOT NULL)"
        )
        if found == 1:  # made before versions: version 1 as it is, recorded, not created again
            _record(tx, migrations[0], " (found: made before the schema had versions)")
            applied.append(1)
    for migration in migrations:
        if migration.version > found:
            for statement in migration.statements(tx.postgres):
                tx.execute(statement)
            _record(tx, migration)
            applied.append(migration.version)
    log.info("journal schema migrated", extra={"from_version": found, "to_version": known})
    return applied
