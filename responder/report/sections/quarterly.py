"""The quarterly checklist: index review, instance sizing, security patches (the cross-region test:
`common.drill_section`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from responder.report.model import Section, Table, Verdict, no_data, partly
from responder.report.sections.common import (
    CPU_DOWN,
    CPU_DOWN_MAX,
    CPU_UP,
    EOL_WARNING_DAYS,
    MEMORY_LOW,
    MEMORY_SPARE,
    POSTGRES_EOL,
    Inputs,
    index_table,
    size,
    unused_indexes,
)


async def index_review(q: Inputs, key: str, title: str) -> Section:
    seen, unused = await unused_indexes(q)
    if not seen and q.catalog is None:
        return no_data(key, title, "pg_index_unused (and no read-only access to the target for duplicates)")
    tables = [index_table("Unused for the whole quarter", unused)] if seen else []
    duplicates = q.catalog.duplicates if q.catalog is not None else []
    if q.catalog is not None:
        tables.append(
            Table(
                f"Duplicate indexes over the same columns (database {q.catalog.database})",
                ("table", "indexes", "their size"),
                [(d.table, ", ".join(d.indexes), size(d.bytes)) for d in duplicates],
            )
        )
    missing = [] if seen else ["pg_index_unused (unused indexes)"]
    if q.catalog is None:
        missing.append("no read-only access to the target (duplicate indexes)")
    note = f" (no data: {'; '.join(missing)})" if missing else ""
    if unused or duplicates:
        reason = (
            f"{len(unused)} indexes unused all quarter, {len(duplicates)} sets of duplicate indexes{note}"
        )
        return Section(key, title, "attention", reason, [], tables)
    if missing:
        found = "no duplicate indexes" if q.catalog is not None else "no index unused all quarter"
        return partly(key, title, missing, found, [], tables)
    return Section(key, title, "ok", "no index unused all quarter and no duplicate indexes", [], tables)


async def instance_sizing(q: Inputs, key: str, title: str) -> Section:
    cpu = q.m("rds_cpu_usage_percent_average")
    p95 = await q.instant(f"max(quantile_over_time(0.95, {cpu}[{q.period.window}]))")
    if not p95:
        return no_data(key, title, "rds_cpu_usage_percent_average")
    cpu_max = (await q.instant(f"max(max_over_time({cpu}[{q.period.window}]))"))[0].value
    memory = await q.instant(f"min(min_over_time({q.m('rds_freeable_memory_bytes')}[{q.period.window}]))")
    connections = await q.instant(
        f"max(max_over_time({q.m('rds_database_connections_average')}[{q.period.window}]))"
    )
    classes = sorted(
        {s.labels.get("instance_class", "") for s in await q.over("last_over_time", "rds_instance_info")}
        - {""}
    )
    cpu_p95 = p95[0].value
    mem_min = memory[0].value if memory else None
    if cpu_p95 > CPU_UP or (mem_min is not None and mem_min < MEMORY_LOW):
        advice = "one class up"
    elif cpu_p95 < CPU_DOWN and cpu_max < CPU_DOWN_MAX and (mem_min is None or mem_min > MEMORY_SPARE):
        advice = "one class down"
    else:
        advice = "keep"
    memory_text = size(mem_min) if mem_min is not None else "no data: rds_freeable_memory_bytes"
    peak_text = f"{connections[0].value:.0f}" if connections else "no data: rds_database_connections_average"
    numbers = (
        f"CPU p95 {cpu_p95:.0f}%, max {cpu_max:.0f}%, freeable memory minimum {memory_text},"
        f" connections peak {peak_text}"
    )
    table = Table(
        "The numbers",
        ("measure", "value"),
        [
            ("instance class", ", ".join(classes) or "no data: rds_instance_info"),
            ("CPU p95", f"{cpu_p95:.1f}%"),
            ("CPU max", f"{cpu_max:.1f}%"),
            ("freeable memory minimum", memory_text),
            ("connections peak", peak_text),
            ("advice", advice),
        ],
    )
    series = await q.trend(f"max({cpu})")
    charts = (
        [q.chart("CPU", [("CPU %", s) for s in series], "percent", ("one class up above", CPU_UP))]
        if series
        else []
    )
    verdict: Verdict = "ok" if advice == "keep" else "attention"
    return Section(key, title, verdict, f"{advice}: {numbers}", charts, [table])


def _major(version: str) -> int | None:
    match = re.match(r"(\d+)", version)
    return int(match.group(1)) if match else None


async def security_patches(q: Inputs, key: str, title: str) -> Section:
    versions = {
        s.labels.get("engine_version", "") for s in await q.over("last_over_time", "rds_instance_info")
    } - {""}
    source = "rds_instance_info"
    if not versions:
        versions = {
            s.labels.get("short_version", "") for s in await q.over("last_over_time", "pg_static")
        } - {""}
        source = "pg_static"
    if not versions and q.catalog is not None:
        versions, source = {q.catalog.server_version.split()[0]}, "server_version"
    if not versions:
        return no_data(key, title, "rds_instance_info, pg_static")
    today = datetime.fromtimestamp(q.period.end, UTC).date()
    rows = []
    problems = []
    for v in sorted(versions):
        major = _major(v)
        eol = POSTGRES_EOL.get(major) if major is not None else None
        left = (eol - today).days if eol else None
        rows.append(
            (v, source, eol.isoformat() if eol else "unknown", "-" if left is None else f"{left} days")
        )
        if left is not None and left < EOL_WARNING_DAYS:
            problems.append(f"PostgreSQL {v} {'reached' if left < 0 else 'reaches'} end of support on {eol}")
    statuses = await q.over("last_over_time", "rds_instance_status")
    upgrading = [s for s in statuses if s.value in (-9, -8)]  # maintenance, upgrading (the exporter's codes)
    rows.append(
        ("pending maintenance", "-", "no signal: the exporter does not poll pending maintenance actions", "-")
    )
    table = Table("Engine versions", ("version", "source", "end of support", "left"), rows)
    if upgrading:
        problems.append(f"{len(upgrading)} instances are in maintenance or upgrading")
    if problems:
        return Section(key, title, "attention", "; ".join(problems), [], [table])
    return Section(
        key,
        title,
        "ok",
        f"{', '.join(sorted(versions))} supported for over {EOL_WARNING_DAYS} days",
        [],
        [table],
    )
