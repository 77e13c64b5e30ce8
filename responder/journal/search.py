"""Read-only searches of the journal for the console and the reports: decisions by playbook, action, outcome,
target and time, and the values the console offers as filters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from responder.journal import Journal
from responder.journal.ops import _row_dict
from responder.journal.records import COLUMNS, Tx


@dataclass(frozen=True)
class ActionFilter:
    """Every given field must match; `since`/`until` bound `created_at` (Unix seconds)."""

    playbook: str | None = None
    action: str | None = None
    outcome: str | None = None
    state: str | None = None
    target: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 200


def op_find(f: ActionFilter) -> Callable[[Tx], list[dict[str, Any]]]:
    def run(tx: Tx) -> list[dict[str, Any]]:
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
        return [_row_dict(r) for r in rows]

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


async def find(journal: Journal, f: ActionFilter) -> list[dict[str, Any]]:
    return await journal.store.run(op_find(f))


async def facets(journal: Journal) -> dict[str, list[str]]:
    return await journal.store.run(op_facets)
