"""The journal's operations: each runs inside one transaction, on either store."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from pgwarden.redact import redact, redact_data
from responder.journal.records import COLUMNS, ClaimResult, NewDecision, Recorded, Tx
from responder.outcomes import ACTED_OUTCOMES, OPEN_STATES, Answer, Outcome, State, sql_list

# A decision that acted (or would have): running now, ended with one of ACTED_OUTCOMES, or interrupted after it
# started (a crash mid-kill still counts toward the cooldown and the daily cap).
_ACTED = (
    f"(state = '{State.RUNNING}' OR outcome IN {sql_list(ACTED_OUTCOMES)}"
    f" OR (outcome = '{Outcome.INTERRUPTED}' AND started_at IS NOT NULL))"
)
_EXPIRE = (
    f"UPDATE pgwarden_actions SET state = '{State.DONE}', outcome = '{Outcome.EXPIRED}', updated_at = ?,"
    " finished_at = ?, error = 'approval window expired'"
)
# Deleted per transaction by op_prune: small enough that no replica waits long behind it.
PRUNE_BATCH = 500


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


def _dumps_redacted(value: Any) -> str | None:
    """A plan or result as stored: every password in it masked (an error quoting a DSN, say)."""
    return None if value is None else _dumps(redact_data(json.loads(json.dumps(value, default=str))))


_ALERT_COLUMNS = (
    "created_at, updated_at, owner, playbook, action, mode, alertname, fingerprint, starts_at, alert_status,"
    " target, target_key"
)
_INSERT = (
    f"INSERT INTO pgwarden_actions ({_ALERT_COLUMNS}, state, outcome, {{key}}, labels, error, finished_at)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def op_record(decisions: Sequence[NewDecision], owner: str) -> Callable[[Tx], list[Recorded]]:
    def run(tx: Tx) -> list[Recorded]:
        now = tx.now()
        out: list[Recorded] = []
        for d in decisions:
            alert = (now, now, owner, d.playbook, d.action, d.mode, d.alertname, d.fingerprint, d.starts_at,
                     d.alert_status, d.target, d.target_key)  # fmt: skip
            finished = now if d.state == State.DONE else None
            row = tx.execute(
                _INSERT.format(key="dedup_key") + " ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
                (*alert, d.state, d.outcome, d.dedup_key, _dumps(d.labels), redact(d.error), finished),
            ).fetchone()
            if row is not None:
                out.append(Recorded(int(row[0]), d.state, d.outcome, None, d))
                continue
            # The key is taken: a redelivery, a repeat or another replica. Journal the duplicate itself.
            first = tx.execute(
                "SELECT id FROM pgwarden_actions WHERE dedup_key = ?", (d.dedup_key,)
            ).fetchone()
            first_id = int(first[0]) if first else None
            dup = tx.execute(
                _INSERT.format(key="duplicate_of") + " RETURNING id",
                (*alert, State.DONE.value, Outcome.DUPLICATE.value, first_id, _dumps(d.labels), f"already decided as action {first_id}",
                 now),
            ).fetchone()  # fmt: skip
            out.append(Recorded(int(dup[0]), State.DONE, Outcome.DUPLICATE, first_id, d))
        return out

    return run


def op_claim(
    action_id: int,
    owner: str,
    playbook: str,
    target_key: str,
    cooldown: float,
    max_per_day: int | None,
    release_key: bool = False,
    exclusive: Sequence[str] = (),
) -> Callable[[Tx], ClaimResult]:
    """queued -> running, unless a cooldown or the daily cap says no (then done/cooldown). With `release_key`
    a refused decision gives its dedup key back, so a later delivery of the same alert decides again.
    `exclusive`: the actions of which at most one may run on a target at a time, across playbooks and replicas
    (a second is done/guardrail while one runs)."""

    def run(tx: Tx) -> ClaimResult:
        tx.lock(f"pgwarden:{playbook}")
        if exclusive:
            tx.lock(f"pgwarden:target:{target_key}")  # taken last by every claim: no lock-order cycle
        now = tx.now()
        row = tx.execute("SELECT state, action FROM pgwarden_actions WHERE id = ?", (action_id,)).fetchone()
        if row is None or row[0] != State.QUEUED:
            return ClaimResult(False, None, f"state is {row[0] if row else 'missing'}")
        if exclusive and row[1] in exclusive:
            busy = tx.execute(
                "SELECT id, action FROM pgwarden_actions WHERE target_key = ? AND id <> ? AND state = ?"
                f" AND action IN ({', '.join('?' for _ in exclusive)}) ORDER BY id LIMIT 1",
                (target_key, action_id, State.RUNNING.value, *exclusive),
            ).fetchone()
            if busy is not None:
                why = f"action {busy[0]} ({busy[1]}) is changing this instance now: one change at a time"
                _finish(tx, action_id, Outcome.GUARDRAIL, None, why, release_key)
                return ClaimResult(False, Outcome.GUARDRAIL, why)
        reason = None
        if cooldown > 0:
            last = tx.execute(
                f"SELECT max(started_at) FROM pgwarden_actions WHERE playbook = ? AND target_key = ?"
                f" AND id <> ? AND started_at >= ? AND {_ACTED}",
                (playbook, target_key, action_id, now - cooldown),
            ).fetchone()
            if last is not None and last[0] is not None:
                reason = f"cooldown: last action on this target {now - float(last[0]):.0f}s ago"
        if reason is None and max_per_day is not None:
            count = tx.execute(
                f"SELECT count(*) FROM pgwarden_actions WHERE playbook = ? AND id <> ? AND started_at >= ?"
                f" AND {_ACTED}",
                (playbook, action_id, now - 86400),
            ).fetchone()
            if int(count[0]) >= max_per_day:
                reason = f"max_per_day: {count[0]} actions in the last 24h"
        if reason is not None:
            _finish(tx, action_id, Outcome.COOLDOWN, None, reason, release_key)
            return ClaimResult(False, Outcome.COOLDOWN, reason)
        tx.execute(
            "UPDATE pgwarden_actions SET state = ?, owner = ?, started_at = ?, updated_at = ? WHERE id = ?",
            (State.RUNNING.value, owner, now, now, action_id),
        )
        return ClaimResult(True)

    return run


def _finish(
    tx: Tx, action_id: int, outcome: Outcome, result: Any, error: str | None, release_key: bool
) -> None:
    now = tx.now()
    key = ", dedup_key = NULL" if release_key else ""
    tx.execute(
        "UPDATE pgwarden_actions SET state = ?, outcome = ?, result = ?, error = ?, updated_at = ?,"
        f" finished_at = ?{key} WHERE id = ?",
        (State.DONE.value, outcome.value, _dumps_redacted(result), redact(error), now, now, action_id),
    )


def op_finish(
    action_id: int, outcome: Outcome, result: Any, error: str | None, release_key: bool = False
) -> Callable[[Tx], None]:
    """Done with `outcome`; with `release_key` (a decision that never started) a later delivery of the same
    alert is a new decision instead of a duplicate of this one."""

    def run(tx: Tx) -> None:
        _finish(tx, action_id, outcome, result, error, release_key)

    return run


def op_set_plan(action_id: int, plan: Any) -> Callable[[Tx], None]:
    def run(tx: Tx) -> None:
        tx.execute(
            "UPDATE pgwarden_actions SET plan = ?, updated_at = ? WHERE id = ?",
            (_dumps_redacted(plan), tx.now(), action_id),
        )

    return run


def op_decide(
    action_id: int, approve: bool, who: str, owner: str, approval_timeout: float
) -> Callable[[Tx], Answer]:
    """pending -> queued (approve) or done/rejected, unless the approval window has passed. The update is
    conditional on the row still being pending: of two concurrent answers exactly one changes it, and the
    other is `not_pending`."""

    def run(tx: Tx) -> Answer:
        now = tx.now()
        row = tx.execute(
            "SELECT state, created_at, outcome FROM pgwarden_actions WHERE id = ?", (action_id,)
        ).fetchone()
        if row is None:
            return Answer.NOT_FOUND
        if row[0] != State.PENDING:
            return Answer.EXPIRED if row[2] == Outcome.EXPIRED else Answer.NOT_PENDING
        if float(row[1]) < now - approval_timeout:
            tx.execute(f"{_EXPIRE} WHERE id = ? AND state = '{State.PENDING}'", (now, now, action_id))
            return Answer.EXPIRED
        if approve:
            changed = tx.execute(
                "UPDATE pgwarden_actions SET state = ?, owner = ?, decided_by = ?, updated_at = ?"
                " WHERE id = ? AND state = ?",
                (State.QUEUED.value, owner, who, now, action_id, State.PENDING.value),
            ).rowcount
        else:
            changed = tx.execute(
                "UPDATE pgwarden_actions SET state = ?, outcome = ?, decided_by = ?, updated_at = ?,"
                " finished_at = ? WHERE id = ? AND state = ?",
                (State.DONE.value, Outcome.REJECTED.value, who, now, now, action_id, State.PENDING.value),
            ).rowcount
        if changed != 1:
            return Answer.NOT_PENDING  # another answer (or the expiry) changed it first
        return Answer.APPROVED if approve else Answer.REJECTED

    return run


def op_expire(approval_timeout: float) -> Callable[[Tx], list[tuple[int, str, str]]]:
    def run(tx: Tx) -> list[tuple[int, str, str]]:
        now = tx.now()
        rows = tx.execute(
            f"{_EXPIRE} WHERE state = '{State.PENDING}' AND created_at < ? RETURNING id, playbook, action",
            (now, now, now - approval_timeout),
        ).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    return run


def op_heartbeat_and_recover(
    owner: str, stale_after: float, recover_all_others: bool
) -> Callable[[Tx], list[tuple[int, str, str, str]]]:
    """Note that `owner` is alive; mark work of dead replicas `interrupted` and return it."""

    def run(tx: Tx) -> list[tuple[int, str, str, str]]:
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
            " RETURNING id, playbook, action, target",
            (State.DONE.value, Outcome.INTERRUPTED.value, now, now, *params),
        ).fetchall()
        tx.execute("DELETE FROM pgwarden_replicas WHERE seen_at < ?", (now - 7 * 86400,))
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    return run


def op_history(
    action: str, target_key: str, outcome: Outcome, within: float
) -> Callable[[Tx], tuple[float, list[float]]]:
    """The journal's now, and when this action ended with `outcome` on the target in the last `within`
    seconds (newest first), both on the journal's clock. For `succeeded` this includes a decision that ended
    otherwise (failed, interrupted by a crash) after journaling an AWS change as sent: the change may have been
    made, so it counts as made."""

    def run(tx: Tx) -> tuple[float, list[float]]:
        now = tx.now()
        rows = tx.execute(
            "SELECT coalesce(finished_at, started_at, updated_at), outcome, plan FROM pgwarden_actions"
            " WHERE action = ? AND target_key = ? AND coalesce(finished_at, started_at, updated_at) >= ?"
            " AND (outcome = ? OR (? AND state = ? AND plan IS NOT NULL))"
            " ORDER BY 1 DESC",
            (action, target_key, now - within, outcome.value, outcome is Outcome.SUCCEEDED, State.DONE.value),
        ).fetchall()
        return now, [float(r[0]) for r in rows if r[1] == outcome.value or _sent_a_change(r[2])]

    return run


def _sent_a_change(plan: str | None) -> bool:
    """Whether a journaled plan shows an AWS change sent (started, done, or failed mid-call)."""
    try:
        effects = (json.loads(plan) or {}).get("effects") or [] if plan else []
    except (ValueError, AttributeError):
        return False
    return any(
        isinstance(e, dict)
        and e.get("kind") == "aws"
        and (
            e.get("state") in ("started", "done")
            # AWS answering with an error made nothing; a timeout or a cut connection may have
            or (e.get("state") == "failed" and not str(e.get("error", "")).startswith("ClientError"))
        )
        for e in effects
    )


def op_prune(retention: float, batch: int = PRUNE_BATCH) -> Callable[[Tx], int]:
    """Delete up to `batch` decisions that ended more than `retention` seconds ago (never a pending, queued or
    running one); how many were deleted."""

    def run(tx: Tx) -> int:
        cutoff = tx.now() - retention
        return tx.execute(
            "DELETE FROM pgwarden_actions WHERE id IN (SELECT id FROM pgwarden_actions"
            f" WHERE state = '{State.DONE}' AND finished_at < ? ORDER BY id LIMIT ?)",
            (cutoff, batch),
        ).rowcount

    return run


def op_count_rows(tx: Tx) -> int:
    return int(tx.execute("SELECT count(*) FROM pgwarden_actions").fetchone()[0])


def _iso(ts: Any) -> str | None:
    if ts is None:
        return None
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(float(ts))) + f".{int(float(ts) * 1000) % 1000:03d}Z"
    )


def _row_dict(row: Sequence[Any]) -> dict[str, Any]:
    names = [c.strip() for c in COLUMNS.split(",")]
    r = dict(zip(names, row, strict=True))
    started, finished = r["started_at"], r["finished_at"]
    return {
        "id": int(r["id"]),
        "playbook": r["playbook"],
        "action": r["action"],
        "mode": r["mode"],
        "state": State(r["state"]),
        "outcome": Outcome(r["outcome"]) if r["outcome"] is not None else None,
        "alert": {
            "alertname": r["alertname"],
            "status": r["alert_status"],
            "fingerprint": r["fingerprint"],
            "startsAt": r["starts_at"],
            "labels": json.loads(r["labels"]) if r["labels"] else {},
        },
        "target": r["target"],
        "plan": json.loads(r["plan"]) if r["plan"] else None,
        "result": json.loads(r["result"]) if r["result"] else None,
        "error": r["error"],
        "duplicate_of": r["duplicate_of"],
        "decided_by": r["decided_by"],
        "replica": r["owner"],
        "timings": {
            "journaled_at": _iso(r["created_at"]),
            "started_at": _iso(started),
            "finished_at": _iso(finished),
            "duration_seconds": (
                round(float(finished) - float(started), 3)
                if started is not None and finished is not None
                else None
            ),
        },
    }


def op_recent(limit: int) -> Callable[[Tx], list[dict[str, Any]]]:
    def run(tx: Tx) -> list[dict[str, Any]]:
        rows = tx.execute(
            f"SELECT {COLUMNS} FROM pgwarden_actions ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_row_dict(r) for r in rows]

    return run


def op_get(action_id: int) -> Callable[[Tx], dict[str, Any] | None]:
    def run(tx: Tx) -> dict[str, Any] | None:
        row = tx.execute(f"SELECT {COLUMNS} FROM pgwarden_actions WHERE id = ?", (action_id,)).fetchone()
        return None if row is None else _row_dict(row)

    return run


def op_count_pending(tx: Tx) -> int:
    sql = "SELECT count(*) FROM pgwarden_actions WHERE state = ?"
    return int(tx.execute(sql, (State.PENDING.value,)).fetchone()[0])


def op_ping(tx: Tx) -> None:
    tx.execute("SELECT 1").fetchone()
