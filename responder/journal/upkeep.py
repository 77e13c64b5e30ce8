"""The journal's upkeep: heartbeats and the recovery of dead replicas' work, the expiry of approvals, retention,
and an operator's take-over of a decision to resume it. Each runs inside one transaction, on either store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from responder.journal.ops import EXPIRE
from responder.journal.outbox import Router, note
from responder.journal.rows import COLUMNS, ActionRow
from responder.journal.tx import Tx
from responder.outcomes import OPEN_STATES, Outcome, State, sql_list

# Deleted per transaction by op_prune: small enough that no replica waits long behind it.
PRUNE_BATCH = 500


def op_expire(approval_timeout: float, route: Router | None = None) -> Callable[[Tx], list[ActionRow]]:
    """Pending decisions older than `approval_timeout` -> done/expired; the rows as they are now."""

    def run(tx: Tx) -> list[ActionRow]:
        now = tx.now()
        rows = tx.execute(
            f"{EXPIRE} WHERE state = '{State.PENDING}' AND created_at < ? RETURNING {COLUMNS}",
            (now, now, now - approval_timeout),
        ).fetchall()
        expired = [ActionRow.of(r) for r in rows]
        for row in expired:
            note(tx, route, row.id, row.playbook, Outcome.EXPIRED.value)
        return expired

    return run


def op_heartbeat_and_recover(
    owner: str, stale_after: float, recover_all_others: bool, route: Router | None = None
) -> Callable[[Tx], list[ActionRow]]:
    """Note that `owner` is alive; mark work of dead replicas `interrupted` and return it."""

    def run(tx: Tx) -> list[ActionRow]:
        now = tx.now()
        tx.execute(
            "INSERT INTO pgwarden_replicas (owner, seen_at) VALUES (?, ?)"
            " ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at",
            (owner, now),
        )
        dead = (
            f"SELECT a.id FROM pgwarden_actions a WHERE a.state IN {sql_list(OPEN_STATES)} AND a.owner <> ?"
        )
        params: tuple[Any, ...] = (owner,)
        if not recover_all_others:
            dead += " AND NOT EXISTS (SELECT 1 FROM pgwarden_replicas r WHERE r.owner = a.owner AND r.seen_at >= ?)"
            params = (owner, now - stale_after)
        rows = tx.execute(
            f"UPDATE pgwarden_actions SET error = CASE WHEN state = '{State.RUNNING}'"
            " THEN 'the responder stopped while this action was running: check the target by hand'"
            " ELSE 'the responder stopped before this action started' END,"
            f" state = ?, outcome = ?, updated_at = ?, finished_at = ? WHERE id IN ({dead})"
            f" RETURNING {COLUMNS}",
            (State.DONE.value, Outcome.INTERRUPTED.value, now, now, *params),
        ).fetchall()
        tx.execute("DELETE FROM pgwarden_replicas WHERE seen_at < ?", (now - 7 * 86400,))
        interrupted = [ActionRow.of(r) for r in rows]
        for row in interrupted:
            note(
                tx,
                route,
                row.id,
                row.playbook,
                Outcome.INTERRUPTED.value,
                follow_up=row.decided_by is not None,
            )
        return interrupted

    return run


def op_orphaned(owner: str, older_than: float) -> Callable[[Tx], list[ActionRow]]:
    """`owner`'s queued decisions untouched for `older_than` seconds, oldest first (read only)."""

    def run(tx: Tx) -> list[ActionRow]:
        rows = tx.execute(
            f"SELECT {COLUMNS} FROM pgwarden_actions WHERE state = '{State.QUEUED}' AND owner = ?"
            " AND updated_at < ? ORDER BY id",
            (owner, tx.now() - older_than),
        ).fetchall()
        return [ActionRow.of(r) for r in rows]

    return run


def op_prune(retention: float, batch: int = PRUNE_BATCH) -> Callable[[Tx], int]:
    """Delete up to `batch` decisions that ended more than `retention` seconds ago (never a pending, queued or
    running one); how many were deleted."""

    def run(tx: Tx) -> int:
        cutoff = tx.now() - retention
        ids = [
            int(r[0])
            for r in tx.execute(
                f"SELECT id FROM pgwarden_actions WHERE state = '{State.DONE}' AND finished_at < ?"
                " ORDER BY id LIMIT ?",
                (cutoff, batch),
            ).fetchall()
        ]
        if not ids:
            return 0
        chosen = f"({', '.join('?' for _ in ids)})"
        tx.execute(f"DELETE FROM pgwarden_approvals WHERE action_id IN {chosen}", ids)
        return tx.execute(f"DELETE FROM pgwarden_actions WHERE id IN {chosen}", ids).rowcount

    return run


def op_take_over(
    action_id: int,
    action: str,
    owner: str,
    stale_after: float,
    refusal: Callable[[ActionRow, bool], str | None],
) -> Callable[[Tx], tuple[ActionRow | None, str | None]]:
    """Own decision `action_id` (one of `action`) again to resume it, unless `refusal(row, running_elsewhere)`
    says why not (`running_elsewhere`: it is running and its owner's heartbeat is fresh). The row as it was (None
    if there is no such decision) and the refusal, None when taken over."""

    def run(tx: Tx) -> tuple[ActionRow | None, str | None]:
        now = tx.now()
        found = tx.execute(
            f"SELECT {', '.join(f'a.{c.strip()}' for c in COLUMNS.split(','))}, r.seen_at"
            " FROM pgwarden_actions a LEFT JOIN pgwarden_replicas r ON r.owner = a.owner"
            " WHERE a.id = ? AND a.action = ?",
            (action_id, action),
        ).fetchone()
        if found is None:
            return None, None
        row, seen = ActionRow.of(found[:-1]), found[-1]
        running_elsewhere = (
            row.state is State.RUNNING and seen is not None and float(seen) >= now - stale_after
        )
        refused = refusal(row, running_elsewhere)
        if refused is not None:
            return row, refused
        tx.execute(
            "UPDATE pgwarden_actions SET state = ?, owner = ?, outcome = NULL, error = NULL, updated_at = ?,"
            " finished_at = NULL WHERE id = ?",
            (State.RUNNING.value, owner, now, action_id),
        )
        return row, None

    return run
