"""Requests that may be taken once, across replicas: the first to record a key takes it, every later one finds
it taken. Keys are kept `keep_for` seconds (on the journal's clock), then purged by the next request."""

from __future__ import annotations

from collections.abc import Callable

from responder.journal.tx import Tx


def op_take_slack_request(signature: str, keep_for: float) -> Callable[[Tx], bool]:
    """Record a verified Slack request's signature: True the first time, False when it was taken already (a
    replay, on this replica or another). Signatures older than `keep_for` are purged in the same transaction."""

    def run(tx: Tx) -> bool:
        now = tx.now()
        tx.execute("DELETE FROM pgwarden_slack_requests WHERE seen_at < ?", (now - keep_for,))
        taken = tx.execute(
            "INSERT INTO pgwarden_slack_requests (signature, seen_at) VALUES (?, ?)"
            " ON CONFLICT (signature) DO NOTHING",
            (signature, now),
        ).rowcount
        return taken == 1

    return run
