"""The console's timeline in words: one line per decision ("cancelled pid 23630 `SELECT pg_sleep(600)` after 7 s
in shop", "grew storage of prod 100 → 125 GiB"), its age ("3 min ago", the exact time beside it for a hover),
and its plan and result as short definition lists instead of JSON.

Journal rows are read through `field`, which takes a mapping (the rows of `responder.journal.search` today) or
an object with the same attribute names (the typed rows to come), nested parts (`alert`, `timings`) alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from responder.ui.links import Link, links

QUERY_SHOWN = 60  # characters of a query in a headline
VALUE_SHOWN = 200  # characters of one value in a definition list (the JSON beside it has all of it)


def field(row: Any, name: str, default: Any = None) -> Any:
    """`row[name]` of a mapping, `row.name` of an object; `default` when absent or None."""
    value = row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)
    return default if value is None else value


def cut(text: str, length: int) -> str:
    """One line of at most `length` characters (an ellipsis where it was cut)."""
    text = " ".join(str(text).split())
    return text if len(text) <= length else text[: length - 1] + "…"


def duration(seconds: float) -> str:
    """7 s, 12 min, 3.5 h, 2 d: how long, as a person says it."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:.0f} d"


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    seconds = (now - when).total_seconds()
    if seconds < 5:
        return "just now" if seconds > -5 else f"in {duration(-seconds)}"
    return f"{duration(seconds)} ago"


def exact(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if when else ""


# ---- one line per decision ------------------------------------------------------------------------------------


def _backends(plan: Mapping[str, Any], pids: list[Any]) -> str:
    """`pid 23630 `SELECT pg_sleep(600)` after 7 s` for the first, `and 2 more` for the rest."""
    by_pid = {b.get("pid"): b for b in field(plan, "backends", []) if isinstance(b, Mapping)}
    first = by_pid.get(pids[0], {})
    text = f"pid {pids[0]}"
    if first.get("query"):
        text += f" `{cut(first['query'], QUERY_SHOWN)}`"
    if isinstance(first.get("running_seconds"), int | float):
        text += f" after {duration(first['running_seconds'])}"
    return text + (f" and {len(pids) - 1} more" if len(pids) > 1 else "")


def _terminate_queries(plan: Mapping[str, Any], result: Mapping[str, Any], dry: bool) -> str:
    where = f" in {plan['database']}" if plan.get("database") else f" on {plan.get('server', 'the server')}"
    backends = [b.get("pid") for b in field(plan, "backends", []) if isinstance(b, Mapping)]
    if dry:
        verb = "cancel" if "cancel" in field(plan, "steps", []) else "terminate"
        return f"would {verb} {_backends(plan, backends)}{where}" if backends else f"nothing to stop{where}"
    done = [(verb, field(result, verb, [])) for verb in ("cancelled", "terminated")]
    said = [f"{verb} {_backends(plan, pids)}" for verb, pids in done if pids]
    if not said:
        limit = plan.get("min_duration_seconds")
        over = f" over {duration(limit)}" if isinstance(limit, int | float) else ""
        return f"nothing to stop: no query{over}{where}"
    return ", then ".join(said) + where


def _scale_instance(plan: Mapping[str, Any], result: Mapping[str, Any], dry: bool) -> str:
    if dry:
        return f"would scale {plan.get('instance')} {plan.get('from')} → {plan.get('to')}"
    before, after = field(result, "before", {}), field(result, "after", {})
    return f"scaled {plan.get('instance')} {before.get('class')} → {after.get('class')}"


def _grow_storage(plan: Mapping[str, Any], result: Mapping[str, Any], dry: bool) -> str:
    ceiling = plan.get("field") == "MaxAllocatedStorage"  # autoscaling on: its ceiling was in the way
    verb = ("would raise" if ceiling else "would grow") if dry else ("raised" if ceiling else "grew")
    what = "the storage ceiling" if ceiling else "storage"
    return f"{verb} {what} of {plan.get('instance')} {plan.get('from')} → {plan.get('to')} GiB"


def _vacuum_analyze(plan: Mapping[str, Any], result: Mapping[str, Any], dry: bool) -> str:
    where = f" in {plan['database']}" if plan.get("database") else ""
    if plan.get("selection") == "stale_analyze":
        tables = field(plan, "tables", [])
        if dry:
            return f"would vacuum {len(tables)} tables with stale statistics{where}"
        skipped = field(result, "skipped_locked", [])
        extra = f" ({len(skipped)} locked, skipped)" if skipped else ""
        return f"vacuumed {len(field(result, 'ran', []))} tables with stale statistics{where}{extra}"
    statement = plan.get("statement") or "VACUUM (ANALYZE)"
    return f"{'would run' if dry else 'ran'} `{cut(statement, QUERY_SHOWN)}`{where}"


def _restore_drill(plan: Mapping[str, Any], result: Mapping[str, Any], dry: bool) -> str:
    if dry:
        return f"would restore {plan.get('dbidentifier') or plan.get('instance', 'the instance')} for a drill"
    checks = [c for c in field(result, "checks", []) if isinstance(c, Mapping)]
    passed = sum(1 for c in checks if c.get("passed"))
    seconds = result.get("restore_seconds")
    took = ""
    if isinstance(seconds, int | float):  # the drill's RTO: in seconds, as its alerts and reports say it
        took = f" in {seconds:.0f} s" + (f" ({duration(seconds)})" if seconds >= 90 else "")
    deleted = "instance deleted" if result.get("deleted") else "instance NOT deleted"
    return (
        f"restored {result.get('dbidentifier')} from {result.get('source')}{took},"
        f" {passed}/{len(checks)} checks passed, {deleted}"
    )


def _maintenance_report(plan: Mapping[str, Any], result: Mapping[str, Any], dry: bool) -> str:
    if dry:
        return f"would build the {plan.get('period')} report"
    verdicts = list(field(result, "verdicts", {}).values())
    counts = [f"{verdicts.count(v)} {v}" for v in ("attention", "no data") if v in verdicts]
    return f"built the {result.get('period')} report" + (f": {', '.join(counts)}" if counts else ": all ok")


def _index_advice(plan: Mapping[str, Any], result: Mapping[str, Any], dry: bool) -> str:
    where = plan.get("databases")
    where = "every database" if where == "all" else ", ".join(map(str, where or []))
    if dry:
        return f"would advise on indexes in {where}"
    databases = [d for d in field(result, "databases", []) if isinstance(d, Mapping)]
    recommended = sum(len(field(d, "recommendations", [])) for d in databases)
    planned = sum(int(field(d, "planned", 0)) for d in databases)
    return f"advised on indexes in {where}: {recommended} recommended, {planned} statement(s) planned"


def _recover(plan: Mapping[str, Any], result: Mapping[str, Any], dry: bool) -> str:
    steps = [name for name, step in field(plan, "steps", {}).items() if field(step, "done")]
    return f"{'dry run of ' if dry else ''}recovery of {plan.get('instance')} to {plan.get('to')}: " + (
        ", ".join(steps) or "no step done"
    )


def _migrate(plan: Mapping[str, Any], result: Mapping[str, Any], dry: bool) -> str:
    command = cut(" ".join(map(str, field(plan, "command", []))), QUERY_SHOWN)
    if dry:
        return f"would run `{command}` on {plan.get('target')}, guarded"
    attempts = [a for a in field(result, "attempts", []) if isinstance(a, Mapping)]
    cancels = [c for a in attempts for c in field(a, "cancels", [])]
    told = f"applied `{command}` on {result.get('target')} in {len(attempts)} attempt(s)"
    if cancels:
        longest = max(float(w.get("waited", 0)) for c in cancels for w in field(c, "blocked", []))
        told += f"; cancelled {len(cancels)} time(s) to let blocked sessions through (longest wait {longest:.1f} s)"
    snapshot = field(field(result, "snapshot", {}), "id")
    return told + (f"; snapshot {snapshot}" if snapshot else "")


def _backfill(plan: Mapping[str, Any], result: Mapping[str, Any], dry: bool) -> str:
    assignment = cut(f"{plan['column']} = {plan['expression']}", QUERY_SHOWN)
    where = f" where `{cut(plan['where'], QUERY_SHOWN)}`" if plan.get("where") else ""
    rows, batches = int(field(result, "rows", 0)), int(field(result, "batches", 0))
    counted = f"{rows:,} row(s) in {batches:,} batch(es)"
    verb = "would backfill" if dry else "backfilled"
    return f"{verb} {plan['schema']}.{plan['table']}: set `{assignment}`{where} on {counted}"


DESCRIBE: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any], bool], str]] = {
    "terminate_queries": _terminate_queries,
    "scale_instance": _scale_instance,
    "grow_storage": _grow_storage,
    "vacuum_analyze": _vacuum_analyze,
    "restore_drill": _restore_drill,
    "maintenance_report": _maintenance_report,
    "index_advice": _index_advice,
    "recover": _recover,
    "migrate": _migrate,
    "backfill": _backfill,
}


def headline(row: Any) -> str:
    """The decision in one line of words: what was done (or would be, or why not)."""
    outcome, action = field(row, "outcome"), field(row, "action")
    outcome = getattr(outcome, "value", outcome)  # an Outcome enum, or its text
    error, target = field(row, "error", ""), field(row, "target", "")
    alertname = field(field(row, "alert", {}), "alertname", "")
    plan, result = field(row, "plan", {}), field(row, "result", {})
    if outcome is None:
        state = getattr(field(row, "state"), "value", field(row, "state"))
        waiting = {"pending": "waiting for an approval", "queued": "queued", "running": "running"}
        return f"{waiting.get(str(state), str(state))}: {action} on {target}"
    said = {
        "duplicate": f"duplicate of #{field(row, 'duplicate_of')}: already decided",
        "resolved": f"alert {alertname} resolved",
        "unmatched": f"alert {alertname}: no playbook matches",
        "no_target": f"no target: {error}",
        "cooldown": f"held back: {error}",
        "expired": f"not approved in time: {error or 'the approval window expired'}",
        "interrupted": f"interrupted: {error}",
        "guardrail": f"refused: {error}",
    }
    if outcome in said:
        return said[outcome]
    if outcome == "rejected":
        decided_by = field(row, "decided_by")
        return f"rejected by {decided_by}" if decided_by else f"alert rejected: {error}"
    describe = DESCRIBE.get(str(action))
    if outcome == "failed" and not (action == "restore_drill" and result):
        return f"failed: {error}"
    if describe is not None and isinstance(plan, Mapping) and isinstance(result, Mapping):
        try:
            told = describe(plan, result, outcome == "dry_run")
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            told = None  # a plan of another shape (an older release's): the plain words below
        if told:
            return told if outcome != "failed" else f"failed: {error} ({told})"
    return f"{action}: {outcome}" + (f" ({error})" if error else "")


# ---- plan and result as definition lists ----------------------------------------------------------------------


def _effect(value: Mapping[str, Any]) -> str:
    """A call the effect gate journaled: `done: ModifyDBInstance (us-east-1) DBInstanceClass db.r6g.large, ...`."""
    what = value.get("operation") or value.get("statement") or value.get("hook") or value.get("kind")
    where = f" ({value['region']})" if value.get("region") else ""
    params = value.get("params") or value.get("argv")
    error = f": {value['error']}" if value.get("error") else ""
    return f"{value.get('state')}: {what}{where}" + (f" {_line(params)}" if params else "") + error


def _line(value: Any) -> str:
    if isinstance(value, Mapping):
        if not value:
            return "none"
        if "kind" in value and "state" in value:  # an effect
            return _effect(value)
        if "step" in value:  # a drill's or a recovery's step: its name first, the time last
            rest = {k: v for k, v in value.items() if k not in ("step", "at")}
            at = f" at {str(value['at'])[11:19]}" if value.get("at") else ""
            return f"{value['step']}{at}" + (f": {_line(rest)}" if rest else "")
        if "passed" in value and "name" in value:  # a drill's check
            mark = "✔" if value.get("passed") else "✘"
            return f"{mark} {value.get('name')}: {value.get('value')} (expect {_line(value.get('expect'))})"
        if "pid" in value and "query" in value:  # a backend terminate_queries chose
            took = value.get("running_seconds")
            running = f", {duration(took)}" if isinstance(took, int | float) else ""
            return f"pid {value['pid']} ({value.get('usename')} in {value.get('datname')}{running}): {value['query']}"
        return ", ".join(f"{k} {_line(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_line(v) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None or value == "" else str(value)


def definitions(value: Any) -> list[tuple[str, list[str]]]:
    """A plan or result as (term, lines): one term per key; a list of records one line each."""
    if not isinstance(value, Mapping):
        return [] if value is None else [("value", [cut(_line(value), VALUE_SHOWN)])]
    out = []
    for key, item in value.items():
        if isinstance(item, list) and any(isinstance(i, Mapping) for i in item):
            lines = [cut(_line(i), VALUE_SHOWN) for i in item]
        else:
            lines = [cut(_line(item), VALUE_SHOWN)]
        out.append((str(key).replace("_", " "), lines))
    return out


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str) if value is not None else ""


@dataclass(frozen=True)
class Entry:
    """One row of the timeline as the templates show it."""

    id: int
    headline: str
    alertname: str
    labels: list[tuple[str, str]]
    journaled_ago: str
    journaled_at: str  # exact, for a hover
    plan: list[tuple[str, list[str]]]
    result: list[tuple[str, list[str]]]
    plan_json: str
    result_json: str
    links: list[Link]


def entry(row: Any, now: datetime, alertmanager: str | None = None, grafana: str | None = None) -> Entry:
    alert = field(row, "alert", {})
    journaled = parse_time(field(field(row, "timings", {}), "journaled_at"))
    labels = field(alert, "labels", {})
    return Entry(
        id=int(field(row, "id")),
        headline=headline(row),
        alertname=str(field(alert, "alertname", "")),
        labels=sorted((str(k), str(v)) for k, v in labels.items() if k != "alertname"),
        journaled_ago=ago(journaled, now),
        journaled_at=exact(journaled),
        plan=definitions(field(row, "plan")),
        result=definitions(field(row, "result")),
        plan_json=pretty(field(row, "plan")),
        result_json=pretty(field(row, "result")),
        links=links(field(alert, "alertname"), labels, field(alert, "startsAt"), alertmanager, grafana),
    )
