"""The weekly report's schema migrations: every `migrate run` and `migrate backfill` the journal holds for the
period (action `migrate`/`backfill`), with what it ran, how it ended, its attempts and cancels, its snapshot.
A migration or backfill that failed or was interrupted is the finding; a refused one (pre-flight, lint) is
listed: nothing ran."""

from __future__ import annotations

from typing import Any

from responder.report.model import Section, Table, no_data
from responder.report.sections.common import Inputs, iso_ts, plural, when

FINISHED = ("succeeded", "failed", "interrupted", "guardrail")
TROUBLE = ("failed", "interrupted")
OUTCOME_WORDS = {"guardrail": "refused"}


def _what(row: dict[str, Any]) -> str:
    labels = (row.get("alert") or {}).get("labels") or {}
    if row.get("action") == "backfill":
        plan = row.get("plan") or {}
        assignment = f"{plan.get('column')} = {plan.get('expression')}" if plan.get("column") else ""
        return f"backfill {labels.get('table', '-')}" + (f": set {assignment}" if assignment else "")
    return str(labels.get("command") or "-")


def _details(row: dict[str, Any]) -> str:
    """Attempts, the watchdog's cancels and the snapshot of a run; rows and batches of a backfill; the error."""
    body = row.get("result") or row.get("plan") or {}
    if row.get("action") == "backfill":
        done = body.get("rows") if "rows" in body else (body.get("progress") or {}).get("rows_done")
        told = [f"{done:,} rows" if isinstance(done, int) else ""]
    else:
        attempts = [a for a in body.get("attempts") or [] if isinstance(a, dict)]
        cancels = sum(len(a.get("cancels") or []) for a in attempts)
        snapshot = (body.get("snapshot") or {}).get("id")
        told = [
            plural(len(attempts), "attempt") if attempts else "",
            plural(cancels, "cancel") if cancels else "",
        ]
        told.append(f"snapshot {snapshot}" if snapshot else "")
    if row.get("error"):
        told.append(str(row["error"]))
    return "; ".join(t for t in told if t) or "-"


async def schema_migrations(q: Inputs, key: str, title: str) -> Section:
    if q.migrations is None:
        return no_data(key, title, "the journal (migrate and backfill rows): give the report --config")
    rows = sorted((r for r in q.migrations if r.get("outcome") in FINISHED), key=lambda r: r["id"])
    if not rows:
        return Section(key, title, "ok", "no schema migration or backfill was journaled in the period")
    table = Table(
        "Migrations and backfills of the period",
        ("finished", "id", "target", "what", "outcome", "details"),
        [
            (
                when(iso_ts((r.get("timings") or {}).get("finished_at"))),
                str(r["id"]),
                str(((r.get("alert") or {}).get("labels") or {}).get("target") or "-"),
                _what(r),
                OUTCOME_WORDS.get(str(r["outcome"]), str(r["outcome"])),
                _details(r),
            )
            for r in rows
        ],
    )
    counts = {o: sum(r["outcome"] == o for r in rows) for o in FINISHED}
    trouble = [r for r in rows if r["outcome"] in TROUBLE]
    said = f"{plural(counts['succeeded'], 'run')} succeeded" + (
        f", {counts['guardrail']} refused before anything ran" if counts["guardrail"] else ""
    )
    if trouble:
        ended = ", ".join(f"#{r['id']} {r['outcome']}" for r in trouble)
        return Section(
            key,
            title,
            "attention",
            f"{len(trouble)} of {plural(len(rows), 'run')} did not finish ({ended}); {said}",
            [],
            [table],
        )
    return Section(key, title, "ok", said, [], [table])
