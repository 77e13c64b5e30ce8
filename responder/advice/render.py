"""The advice as text (for a person) or JSON (for a program)."""

from __future__ import annotations

import json

from responder.advice.findings import LARGE_HASH, LARGE_SORT
from responder.advice.model import Advice, DatabaseAdvice, Recommendation

TEXT_WIDTH = 160


def _size(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024:
            return f"{size:,.0f} {unit}"
        size /= 1024
    return f"{size:,.1f} TB"


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= TEXT_WIDTH else flat[: TEXT_WIDTH - 3] + "..."


def _recommendation(number: int, rec: Recommendation) -> list[str]:
    lines = [
        f"  {number}. {rec.create_statement}",
        f"     cost {rec.weighted_before:,.0f} -> {rec.weighted_after:,.0f} weighted by calls"
        f" ({rec.saving:.0%} less); index about {_size(rec.index_bytes)};"
        f" table {_size(rec.table_bytes)}, {rec.writes_per_second:,.1f} rows written/s",
    ]
    if rec.write_heavy:
        lines.append(
            f"     WRITE-HEAVY table: every insert and update also writes this index (~{_size(rec.index_bytes)})"
        )
    for served in rec.served:
        s = served.statement
        lines.append(
            f"     - queryid {s.queryid}: {s.calls:,} calls, mean {s.mean_ms:,.2f} ms,"
            f" cost {served.cost_before:,.1f} -> {served.cost_after:,.1f}: {_short(s.text)}"
        )
    return lines


def _database(db: DatabaseAdvice) -> list[str]:
    lines = [f"database {db.database}"]
    if db.error:
        return [*lines, f"  not examined: {db.error}"]
    if db.hypopg_hint:
        lines.append(f"  no index advice: {db.hypopg_hint}")
    elif db.recommendations:
        lines.append(f"  index advice (hypopg {db.hypopg}):")
        for number, rec in enumerate(db.recommendations, 1):
            lines += _recommendation(number, rec)
    else:
        lines.append(f"  index advice (hypopg {db.hypopg}): no index would cut its statements' cost enough")
    with_findings = [p for p in db.plans if p.findings]
    lines.append(f"  plans: {len(db.plans)} statements planned, {len(with_findings)} with findings")
    for plan in with_findings:
        s = plan.statement
        lines.append(
            f"  - queryid {s.queryid} ({s.calls:,} calls, mean {s.mean_ms:,.2f} ms): {_short(s.text)}"
        )
        for f in plan.findings:
            where = f" on {f.relation}" if f.relation else ""
            label = "key" if f.kind in (LARGE_SORT, LARGE_HASH) else "filter"
            what = f" {label} {f.filter}" if f.filter else ""
            lines.append(f"      {f.kind}{where}:{what} ({f.rows:,.0f} rows estimated; {f.detail})")
    if db.other_kinds:
        lines.append(
            f"  {db.other_kinds} top statements of other kinds (utility, INSERT ... VALUES): not planned"
        )
    if db.not_planned:
        lines.append(f"  not planned: {len(db.not_planned)}")
        for item in db.not_planned:
            lines.append(
                f"  - queryid {item.statement.queryid}: {item.reason}: {_short(item.statement.text)}"
            )
    return lines


def to_text(advice: Advice) -> str:
    head = f"index advice for {advice.target}"
    if advice.server_version:
        head += f" (PostgreSQL {advice.server_version // 10000}, {advice.seconds:.1f} s)"
    lines = [head]
    if advice.error:
        lines.append(f"not examined: {advice.error}")
    if not advice.databases and not advice.error:
        lines.append("no statements in pg_stat_statements")
    for db in advice.databases:
        lines += ["", *_database(db)]
    return "\n".join(lines) + "\n"


def to_json(advice: Advice) -> str:
    return json.dumps(advice.to_json(), indent=2) + "\n"
