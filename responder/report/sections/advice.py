"""The weekly and quarterly reports' query plans and index advice: the newest `index_advice` run the journal
holds for the period (the scheduled action, docs/advice.md), its recommended indexes with their evidence in
brief. Recommended indexes are the finding; a run that failed says why."""

from __future__ import annotations

from typing import Any

from responder.report.model import Section, Table, no_data
from responder.report.sections.common import Inputs, iso_ts, plural, size, when


def _rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for database in result.get("databases") or []:
        for rec in database.get("recommendations") or []:
            saving = rec.get("saving")
            rows.append((
                str(database.get("database", "-")),
                str(rec.get("create_statement", "-")),
                f"{saving:.0%}" if isinstance(saving, int | float) else "-",
                str(len(rec.get("queryids") or [])),
                size(float(rec.get("index_bytes") or 0)),
                "write-heavy" if rec.get("write_heavy") else "",
            ))  # fmt: skip
    return rows


def _without_hypopg(result: dict[str, Any]) -> list[str]:
    return [str(d.get("database")) for d in result.get("databases") or [] if d.get("hypopg_hint")]


async def index_advice(q: Inputs, key: str, title: str) -> Section:
    if q.advice is None:
        return no_data(key, title, "the journal (index_advice rows): give the report --config")
    runs = sorted((r for r in q.advice if r.get("outcome") in ("succeeded", "failed")), key=lambda r: r["id"])
    if not runs:
        return no_data(key, title, "no index_advice run was journaled in the period: schedule the action")
    latest = runs[-1]
    finished = when(iso_ts((latest.get("timings") or {}).get("finished_at")))
    if latest["outcome"] == "failed":
        return Section(key, title, "attention", f"the latest advice (#{latest['id']}, {finished}) failed: "
                       f"{latest.get('error') or 'no reason journaled'}")  # fmt: skip
    result = latest.get("result") or {}
    rows = _rows(result)
    planned = sum(int(d.get("planned") or 0) for d in result.get("databases") or [])
    missing = _without_hypopg(result)
    told = f"the latest advice (#{latest['id']}, {finished}) planned {plural(planned, 'statement')}"
    if missing:
        told += f"; no index advice in {', '.join(missing)} (no hypopg: CREATE EXTENSION hypopg)"
    if not rows:
        return Section(key, title, "ok", f"{told}; no index would cut their cost by enough")
    table = Table(
        "Recommended indexes (estimated, hypothetical; review before creating)",
        ("database", "index", "cost saved", "statements", "index size", "table"),
        rows,
    )
    return Section(
        key,
        title,
        "attention",
        f"{told}: {len(rows)} {'index' if len(rows) == 1 else 'indexes'} recommended",
        [],
        [table],
    )
