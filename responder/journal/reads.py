"""The journal's reads: one decision, the latest ones, searches for the console and the reports, the facts the
guards, the scheduler and the drill gauges ask for. Each runs inside one transaction, on either store."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from responder.journal.rows import COLUMNS, ActionFilter, ActionRow, Approval
from responder.journal.tx import Tx
from responder.outcomes import Outcome, State, sql_list


def get_row(tx: Tx, action_id: int) -> ActionRow | None:
    row = tx.execute(f"SELECT {COLUMNS} FROM pgwarden_actions WHERE id = ?", (action_id,)).fetchone()
    return None if row is None else with_approvals(tx, [ActionRow.of(row)])[0]


def with_approvals(tx: Tx, rows: list[ActionRow]) -> list[ActionRow]:
    """The rows, each with the approvals journaled for it (the two-person rule's, one by one)."""
    if not rows:
        return rows
    found: dict[int, list[Approval]] = {}
    ids = [r.id for r in rows]
    for action_id, by, at in tx.execute(
        "SELECT action_id, approver, approved_at FROM pgwarden_approvals"
        f" WHERE action_id IN ({', '.join('?' for _ in ids)}) ORDER BY approved_at, approver",
        ids,
    ).fetchall():
        found.setdefault(int(action_id), []).append(Approval(str(by), float(at)))
    return [replace(r, approvals=tuple(found[r.id])) if r.id in found else r for r in rows]


def op_get(action_id: int) -> Callable[[Tx], ActionRow | None]:
    def run(tx: Tx) -> ActionRow | None:
        return get_row(tx, action_id)

    return run


def op_recent(limit: int) -> Callable[[Tx], list[ActionRow]]:
    def run(tx: Tx) -> list[ActionRow]:
        rows = tx.execute(
            f"SELECT {COLUMNS} FROM pgwarden_actions ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return with_approvals(tx, [ActionRow.of(r) for r in rows])

    return run


def op_find(f: ActionFilter) -> Callable[[Tx], list[ActionRow]]:
    """The rows matching every given field of `f`, newest first."""

    def run(tx: Tx) -> list[ActionRow]:
        where: list[str] = []
        params: list[Any] = []
        for column in ("playbook", "action", "outcome", "state", "target"):
            value = getattr(f, column)
            if value is not None:
                where.append(f"{column} = ?")  # column names are the constants above, values are bound
                params.append(value)
        if f.since is not None:
            where.append("created_at >= ?")
            params.append(f.since)
        if f.until is not None:
            where.append("created_at < ?")
            params.append(f.until)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = tx.execute(
            f"SELECT {COLUMNS} FROM pgwarden_actions{clause} ORDER BY id DESC LIMIT ?", (*params, f.limit)
        ).fetchall()
        return with_approvals(tx, [ActionRow.of(r) for r in rows])

    return run


def op_facets(tx: Tx) -> dict[str, list[str]]:
    """The distinct playbooks, outcomes and targets in the journal, for the console's filters."""
    out: dict[str, list[str]] = {}
    for column in ("playbook", "outcome", "target"):
        rows = tx.execute(
            f"SELECT DISTINCT {column} FROM pgwarden_actions WHERE {column} IS NOT NULL ORDER BY {column}"
        ).fetchall()
        out[column] = [str(r[0]) for r in rows]
    return out


def op_ended(action: str, outcomes: Sequence[Outcome], since: float) -> Callable[[Tx], list[ActionRow]]:
    """The decisions of `action` that ended with one of `outcomes` at or after `since`, oldest first."""

    def run(tx: Tx) -> list[ActionRow]:
        rows = tx.execute(
            f"SELECT {COLUMNS} FROM pgwarden_actions"
            f" WHERE action = ? AND state = '{State.DONE}' AND outcome IN {sql_list(outcomes)}"
            " AND finished_at >= ? ORDER BY finished_at, id",
            (action, since),
        ).fetchall()
        return [ActionRow.of(r) for r in rows]

    return run


def op_is_decided(dedup_key: str) -> Callable[[Tx], bool]:
    """Whether a decision holds `dedup_key`."""

    def run(tx: Tx) -> bool:
        sql = "SELECT 1 FROM pgwarden_actions WHERE dedup_key = ?"
        return tx.execute(sql, (dedup_key,)).fetchone() is not None

    return run


def op_last_decision(playbook: str) -> Callable[[Tx], ActionRow | None]:
    """The playbook's latest decision that was not a duplicate."""

    def run(tx: Tx) -> ActionRow | None:
        row = tx.execute(
            f"SELECT {COLUMNS} FROM pgwarden_actions"
            " WHERE playbook = ? AND dedup_key IS NOT NULL ORDER BY id DESC LIMIT 1",
            (playbook,),
        ).fetchone()
        return None if row is None else ActionRow.of(row)

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


def op_count_rows(tx: Tx) -> int:
    return int(tx.execute("SELECT count(*) FROM pgwarden_actions").fetchone()[0])


def op_count_pending(tx: Tx) -> int:
    sql = "SELECT count(*) FROM pgwarden_actions WHERE state = ?"
    return int(tx.execute(sql, (State.PENDING.value,)).fetchone()[0])
