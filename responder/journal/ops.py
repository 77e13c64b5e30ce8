"""The journal's writes of one decision's life: record, claim, plan, finish, approve or reject. Each runs inside
one transaction, on either store."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pgwarden.redact import redact, redact_data
from responder.decision import Decision
from responder.journal.outbox import APPROVED, Router, note
from responder.journal.reads import get_row as _get
from responder.journal.rows import ActionRow, Claim, trigger_columns
from responder.journal.tx import Tx
from responder.outcomes import ACTED_OUTCOMES, Answer, Outcome, State, sql_list

# A decision that acted (or would have): running now, ended with one of ACTED_OUTCOMES, or interrupted after it
# started (a crash mid-kill still counts toward the cooldown and the daily cap).
_ACTED = (
    f"(state = '{State.RUNNING}' OR outcome IN {sql_list(ACTED_OUTCOMES)}"
    f" OR (outcome = '{Outcome.INTERRUPTED}' AND started_at IS NOT NULL))"
)
EXPIRE = (
    f"UPDATE pgwarden_actions SET state = '{State.DONE}', outcome = '{Outcome.EXPIRED}', updated_at = ?,"
    " finished_at = ?, error = 'approval window expired'"
)


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
    f"INSERT INTO pgwarden_actions ({_ALERT_COLUMNS}, state, outcome, {{key}}, labels, error, started_at,"
    " finished_at, params_digest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def op_record(
    decisions: Sequence[Decision], owner: str, route: Router | None = None
) -> Callable[[Tx], list[Decision]]:
    """Journal decisions (each comes back with its id); one whose dedup key is taken is journaled, and comes back,
    as a duplicate of the decision holding it. One journaled `running` (an operator's, run at once by the process
    that decided it) starts now. One pending or done is queued for the receivers `route` names."""

    def run(tx: Tx) -> list[Decision]:
        now = tx.now()
        out: list[Decision] = []
        for d in decisions:
            alertname, fingerprint, starts_at, status, labels = trigger_columns(d.trigger)
            target, key = (d.target.describe(), d.target.key) if d.target is not None else (None, None)
            alert = (now, now, owner, d.playbook, d.action, d.mode, alertname, fingerprint, starts_at, status,
                     target, key)  # fmt: skip
            started = now if d.state == State.RUNNING else None
            finished = now if d.state == State.DONE else None
            row = tx.execute(
                _INSERT.format(key="dedup_key") + " ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
                (
                    *alert,
                    d.state,
                    d.outcome,
                    d.dedup_key,
                    _dumps(labels),
                    redact(d.error),
                    started,
                    finished,
                    d.params_digest,
                ),
            ).fetchone()
            if row is not None:
                out.append(replace(d, id=int(row[0])))
                _note_new(tx, route, int(row[0]), d.playbook, d.state, d.outcome)
                continue
            # The key is taken: a redelivery, a repeat or another replica. Journal the duplicate itself.
            first = tx.execute(
                "SELECT id FROM pgwarden_actions WHERE dedup_key = ?", (d.dedup_key,)
            ).fetchone()
            first_id = int(first[0]) if first else None
            dup = tx.execute(
                _INSERT.format(key="duplicate_of") + " RETURNING id",
                (*alert, State.DONE.value, Outcome.DUPLICATE.value, first_id, _dumps(labels),
                 f"already decided as action {first_id}", None, now, d.params_digest),
            ).fetchone()  # fmt: skip
            out.append(
                replace(d, id=int(dup[0]), state=State.DONE, outcome=Outcome.DUPLICATE, duplicate_of=first_id)
            )
            _note_new(tx, route, int(dup[0]), d.playbook, State.DONE, Outcome.DUPLICATE)
        return out

    return run


def _note_new(
    tx: Tx, route: Router | None, action_id: int, playbook: str | None, state: State, outcome: Outcome | None
) -> None:
    """A decision just journaled: receivers hear of it if it waits for an approval or has ended."""
    if state is State.PENDING:
        note(tx, route, action_id, playbook, State.PENDING.value, follow_up=False)
    elif state is State.DONE and outcome is not None:
        note(tx, route, action_id, playbook, outcome.value, follow_up=False)


def op_claim(claim: Claim, owner: str, route: Router | None = None) -> Callable[[Tx], ActionRow | None]:
    """queued -> running, unless a cooldown or the daily cap says no (then done/cooldown), or an `exclusive`
    action runs on the target (then done/guardrail). The row as the claim left it (running: claimed; done:
    refused, its outcome and why), or None when it was not queued (nothing changed)."""
    action_id, playbook, target_key = claim.action_id, claim.playbook, claim.target_key

    def run(tx: Tx) -> ActionRow | None:
        tx.lock(f"pgwarden:{playbook}")
        if claim.exclusive:
            tx.lock(f"pgwarden:target:{target_key}")  # taken last by every claim: no lock-order cycle
        now = tx.now()
        row = _get(tx, action_id)
        if row is None or row.state is not State.QUEUED:
            return None
        if claim.exclusive and row.action in claim.exclusive:
            busy = tx.execute(
                "SELECT id, action FROM pgwarden_actions WHERE target_key = ? AND id <> ? AND state = ?"
                f" AND action IN ({', '.join('?' for _ in claim.exclusive)}) ORDER BY id LIMIT 1",
                (target_key, action_id, State.RUNNING.value, *claim.exclusive),
            ).fetchone()
            if busy is not None:
                why = f"action {busy[0]} ({busy[1]}) is changing this instance now: one change at a time"
                _finish(tx, action_id, Outcome.GUARDRAIL, None, why, claim.release_key, route)
                return _get(tx, action_id)
        reason = None
        if claim.cooldown > 0:
            last = tx.execute(
                f"SELECT max(started_at) FROM pgwarden_actions WHERE playbook = ? AND target_key = ?"
                f" AND id <> ? AND started_at >= ? AND {_ACTED}",
                (playbook, target_key, action_id, now - claim.cooldown),
            ).fetchone()
            if last is not None and last[0] is not None:
                reason = f"cooldown: last action on this target {now - float(last[0]):.0f}s ago"
        if reason is None and claim.max_per_day is not None:
            count = tx.execute(
                f"SELECT count(*) FROM pgwarden_actions WHERE playbook = ? AND id <> ? AND started_at >= ?"
                f" AND {_ACTED}",
                (playbook, action_id, now - 86400),
            ).fetchone()
            if int(count[0]) >= claim.max_per_day:
                reason = f"max_per_day: {count[0]} actions in the last 24h"
        if reason is not None:
            _finish(tx, action_id, Outcome.COOLDOWN, None, reason, claim.release_key, route)
            return _get(tx, action_id)
        tx.execute(
            "UPDATE pgwarden_actions SET state = ?, owner = ?, started_at = ?, updated_at = ? WHERE id = ?",
            (State.RUNNING.value, owner, now, now, action_id),
        )
        return replace(row, state=State.RUNNING, owner=owner, started_at=now, updated_at=now)

    return run


def _finish(
    tx: Tx,
    action_id: int,
    outcome: Outcome,
    result: Any,
    error: str | None,
    release_key: bool,
    route: Router | None = None,
) -> None:
    now = tx.now()
    key = ", dedup_key = NULL" if release_key else ""
    # Already done with this outcome: a retry whose first attempt committed (its answer lost) changes nothing.
    row = tx.execute(
        "UPDATE pgwarden_actions SET state = ?, outcome = ?, result = ?, error = ?, updated_at = ?,"
        f" finished_at = ?{key} WHERE id = ? AND (state <> ? OR outcome IS NULL OR outcome <> ?)"
        " RETURNING playbook, decided_by",
        (State.DONE.value, outcome.value, _dumps_redacted(result), redact(error), now, now, action_id,
         State.DONE.value, outcome.value),
    ).fetchone()  # fmt: skip
    if row is not None:
        # Only a decision that waited for an approval was said before it ended: its receivers hear how.
        note(tx, route, action_id, row[0], outcome.value, follow_up=row[1] is not None)


def op_finish(
    action_id: int,
    outcome: Outcome,
    result: Any,
    error: str | None,
    release_key: bool = False,
    route: Router | None = None,
) -> Callable[[Tx], None]:
    """Done with `outcome`; with `release_key` (a decision that never started) a later delivery of the same
    alert is a new decision instead of a duplicate of this one."""

    def run(tx: Tx) -> None:
        _finish(tx, action_id, outcome, result, error, release_key, route)

    return run


def op_set_plan(action_id: int, plan: Any) -> Callable[[Tx], None]:
    def run(tx: Tx) -> None:
        tx.execute(
            "UPDATE pgwarden_actions SET plan = ?, updated_at = ? WHERE id = ?",
            (_dumps_redacted(plan), tx.now(), action_id),
        )

    return run


def op_decide(
    action_id: int,
    approve: bool,
    who: str,
    owner: str,
    approval_timeout: float,
    needed: Mapping[str, int] | None = None,
    nonce: str | None = None,
    route: Router | None = None,
    approvers: Collection[str] | None = None,
) -> Callable[[Tx], Answer]:
    """pending -> queued (approved) or done/rejected, unless the approval window has passed. A playbook that
    needs n approvals (`needed`, by playbook name; default 1) is approved by the n-th different approver; each
    approval is journaled (who, when), the same approver twice counts once, one rejection rejects. Given the
    names of the configured `approvers`, an approval journaled by someone no longer one of them (removed, or
    made a viewer) stays on the record but no longer counts. With an approval link's `nonce`, it is spent by
    what decides, and a nonce spent already decides nothing.

    Deciders of one decision take its lock (PostgreSQL: an advisory lock; SQLite: the write lock): the count
    of approvals and the change of state are one step, so of two concurrent answers exactly one changes the
    row, and of two approvals that complete the count exactly one approves."""

    def run(tx: Tx) -> Answer:
        tx.lock(f"pgwarden:decide:{action_id}")
        now = tx.now()
        row = tx.execute(
            "SELECT state, created_at, outcome, playbook FROM pgwarden_actions WHERE id = ?", (action_id,)
        ).fetchone()
        if row is None:
            return Answer.NOT_FOUND
        if nonce is not None and _spent(tx, nonce):
            return Answer.LINK_USED
        if row[0] != State.PENDING:
            return Answer.EXPIRED if row[2] == Outcome.EXPIRED else Answer.NOT_PENDING
        if float(row[1]) < now - approval_timeout:
            tx.execute(f"{EXPIRE} WHERE id = ? AND state = '{State.PENDING}'", (now, now, action_id))
            note(tx, route, action_id, row[3], Outcome.EXPIRED.value)
            return Answer.EXPIRED
        if approve:
            count = (needed or {}).get(row[3] or "", 1)
            answer = _approve(tx, action_id, who, owner, count, now, approvers)
        else:
            changed = tx.execute(
                "UPDATE pgwarden_actions SET state = ?, outcome = ?, decided_by = ?, updated_at = ?,"
                " finished_at = ? WHERE id = ? AND state = ?",
                (State.DONE.value, Outcome.REJECTED.value, who, now, now, action_id, State.PENDING.value),
            ).rowcount
            # another answer (or the expiry) changed it first
            answer = Answer.REJECTED if changed == 1 else Answer.NOT_PENDING
        if nonce is not None and answer in (Answer.APPROVED, Answer.REJECTED, Answer.RECORDED):
            tx.execute(
                "INSERT INTO pgwarden_link_nonces (nonce, action_id, approver, spent_at) VALUES (?, ?, ?, ?)",
                (nonce, action_id, who, now),
            )
        if answer in (Answer.APPROVED, Answer.RECORDED, Answer.REJECTED):
            # an approval (the last one needed, or one of them) goes where the pending decision went
            note(
                tx,
                route,
                action_id,
                row[3],
                Outcome.REJECTED.value if answer is Answer.REJECTED else APPROVED,
            )
        return answer

    return run


def _spent(tx: Tx, nonce: str) -> bool:
    return tx.execute("SELECT 1 FROM pgwarden_link_nonces WHERE nonce = ?", (nonce,)).fetchone() is not None


def _approve(
    tx: Tx, action_id: int, who: str, owner: str, needed: int, now: float, current: Collection[str] | None
) -> Answer:
    """One approval journaled; the decision queued once `needed` different approvers (of the `current` ones,
    if given) have approved it."""
    added = tx.execute(
        "INSERT INTO pgwarden_approvals (action_id, approver, approved_at) VALUES (?, ?, ?)"
        " ON CONFLICT (action_id, approver) DO NOTHING",
        (action_id, who, now),
    ).rowcount
    if added != 1:
        return Answer.ALREADY_APPROVED
    approvers = [
        str(r[0])
        for r in tx.execute(
            "SELECT approver FROM pgwarden_approvals WHERE action_id = ? ORDER BY approved_at, approver",
            (action_id,),
        ).fetchall()
        if current is None or str(r[0]) in current
    ]
    if len(approvers) < needed:
        return Answer.RECORDED
    changed = tx.execute(
        "UPDATE pgwarden_actions SET state = ?, owner = ?, decided_by = ?, updated_at = ?"
        " WHERE id = ? AND state = ?",
        (State.QUEUED.value, owner, ", ".join(approvers), now, action_id, State.PENDING.value),
    ).rowcount
    return Answer.APPROVED if changed == 1 else Answer.NOT_PENDING


def op_ping(tx: Tx) -> None:
    tx.execute("SELECT 1").fetchone()
