"""The console's state in the journal, so that any replica serves any browser: signed-in sessions (keyed by a
hash of their id, never the id itself) and the nonces of approval links spent (`ops.op_decide` spends them).
Each operation runs inside one transaction, on either store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from responder.journal.tx import Tx

# Spent nonces are kept this long: longer than any approval link lives (responder.approvals.links.LINK_TTL), so
# a link is refused by its age before its nonce is forgotten.
NONCE_KEEP = 86400.0


@dataclass(frozen=True)
class SessionRow:
    """A session as journaled: whose, the fingerprint of the token they signed in with, until when."""

    principal: str
    token_fingerprint: str
    expires_at: float


def op_session_create(
    id_hash: str, principal: str, token_fingerprint: str, ttl: float
) -> Callable[[Tx], float]:
    """Journal a new session; when it expires (the journal's clock)."""

    def run(tx: Tx) -> float:
        now = tx.now()
        tx.execute(
            "INSERT INTO pgwarden_sessions (id_hash, principal, token_fingerprint, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (id_hash, principal, token_fingerprint, now, now + ttl),
        )
        return now + ttl

    return run


def op_session_get(id_hash: str) -> Callable[[Tx], SessionRow | None]:
    """The session, unless there is none or it has expired."""

    def run(tx: Tx) -> SessionRow | None:
        row = tx.execute(
            "SELECT principal, token_fingerprint, expires_at FROM pgwarden_sessions"
            " WHERE id_hash = ? AND expires_at > ?",
            (id_hash, tx.now()),
        ).fetchone()
        return None if row is None else SessionRow(str(row[0]), str(row[1]), float(row[2]))

    return run


def op_session_drop(id_hash: str) -> Callable[[Tx], None]:
    def run(tx: Tx) -> None:
        tx.execute("DELETE FROM pgwarden_sessions WHERE id_hash = ?", (id_hash,))

    return run


def op_purge_console(link_ttl: float) -> Callable[[Tx], tuple[int, int]]:
    """Delete expired sessions, and the nonces of links that have expired anyway (spent longer than a link
    lives ago): how many of each."""

    def run(tx: Tx) -> tuple[int, int]:
        now = tx.now()
        sessions = tx.execute("DELETE FROM pgwarden_sessions WHERE expires_at <= ?", (now,)).rowcount
        nonces = tx.execute("DELETE FROM pgwarden_link_nonces WHERE spent_at < ?", (now - link_ttl,)).rowcount
        return sessions, nonces

    return run


def op_link_spent(nonce: str) -> Callable[[Tx], bool]:
    """Whether an approval link with this nonce has decided something already."""

    def run(tx: Tx) -> bool:
        found = tx.execute("SELECT 1 FROM pgwarden_link_nonces WHERE nonce = ?", (nonce,)).fetchone()
        return found is not None

    return run
