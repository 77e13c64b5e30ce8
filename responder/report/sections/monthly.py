"""The monthly checklist: table bloat, vacuum and analyze age, the VACUUM ANALYZE runs (the disaster-recovery
test: `common.drill_section`)."""

from __future__ import annotations

from responder.report.model import Section, Table, no_data, partly
from responder.report.prometheus import Series
from responder.report.sections.common import (
    BLOAT_RATIO,
    DEAD_RATIO,
    STALE_SECONDS,
    TABLE,
    TOP,
    Inputs,
    by_labels,
    iso_ts,
    key_of,
    regex_of,
    seconds,
    size,
    when,
)


async def table_bloat(q: Inputs, key: str, title: str) -> Section:
    top = await q.instant(f"topk({TOP}, last_over_time({q.m('pg_table_bloat_bytes')}[{q.period.window}]))")
    if not top:
        return no_data(key, title, "pg_table_bloat_bytes")
    ratio = by_labels(await q.over("last_over_time", "pg_table_bloat_ratio"), *TABLE)
    top.sort(key=lambda s: -s.value)
    rows = [
        (k[0], f"{k[1]}.{k[2]}", size(s.value), f"{ratio[k]:.0%}" if k in ratio else "-")
        for s in top
        for k in [key_of(s.labels, *TABLE)]
    ]
    names = regex_of([s.labels.get("relname", "") for s in top[:5]])
    series = await q.trend(q.m("pg_table_bloat_bytes", f'relname=~"{names}"'))
    charts = [
        q.chart(
            "Bloat of the most bloated tables",
            [(f"{s.labels.get('schemaname', '')}.{s.labels.get('relname', '')}", Series({}, [(t, v / 2**20) for t, v in s.points])) for s in series],
            "MiB",
        )
    ] if series else []  # fmt: skip
    table = Table("Most bloated tables", ("database", "table", "bloat", "bloat ratio"), rows)
    bloated = [k for k, r in ratio.items() if r >= BLOAT_RATIO]
    if bloated:
        reason = f"{len(bloated)} tables are over {BLOAT_RATIO:.0%} bloat (worst: {rows[0][1]}, {rows[0][2]})"
        return Section(key, title, "attention", reason, charts, [table])
    return Section(
        key,
        title,
        "ok",
        f"no table is over {BLOAT_RATIO:.0%} bloat (most: {rows[0][1]}, {rows[0][2]})",
        charts,
        [table],
    )


async def vacuum_age(q: Inputs, key: str, title: str) -> Section:
    now = q.period.end
    last: dict[tuple[str, ...], float] = {}
    for name in ("pg_stat_user_tables_last_vacuum", "pg_stat_user_tables_last_autovacuum"):
        for k, v in by_labels(await q.over("last_over_time", name), *TABLE).items():
            last[k] = max(v, last.get(k, 0.0))
    dead = by_labels(await q.over("last_over_time", "pg_stat_user_tables_n_dead_tup"), *TABLE)
    live = by_labels(await q.over("last_over_time", "pg_stat_user_tables_n_live_tup"), *TABLE)
    if not dead and q.catalog is None:
        return no_data(key, title, "pg_stat_user_tables_n_dead_tup (and no read-only access to the target)")
    stale_vacuum = []
    for k, d in dead.items():
        ratio = d / max(1.0, d + live.get(k, 0.0))
        age = now - last[k] if k in last else None
        if ratio >= DEAD_RATIO and (age is None or age > STALE_SECONDS):
            stale_vacuum.append((k, ratio, age))
    stale_vacuum.sort(key=lambda item: -item[1])
    tables = [
        Table(
            "Tables with dead tuples and no recent vacuum",
            ("database", "table", "dead tuples", "last vacuum"),
            [
                (k[0], f"{k[1]}.{k[2]}", f"{r:.0%}", "never" if a is None else f"{seconds(a)} ago")
                for k, r, a in stale_vacuum[:TOP]
            ],
        )
    ]
    stale_stats = []
    if q.catalog is not None:
        for s in q.catalog.statistics:
            age = None if s.analyzed_at is None else now - s.analyzed_at
            changed = s.modified_since > max(50, 0.1 * s.live_rows)
            if changed and (age is None or age > STALE_SECONDS):
                stale_stats.append((s, age))
        tables.append(
            Table(
                f"Statistics out of date (database {q.catalog.database})",
                ("table", "last analyze", "rows changed since", "live rows"),
                [
                    (
                        s.table,
                        "never" if a is None else f"{seconds(a)} ago",
                        str(s.modified_since),
                        str(s.live_rows),
                    )
                    for s, a in stale_stats[:TOP]
                ],
            )
        )
    charts = []
    ratio_expr = (
        f"max({q.m('pg_stat_user_tables_n_dead_tup')} / clamp_min({q.m('pg_stat_user_tables_n_live_tup')}"
        f" + {q.m('pg_stat_user_tables_n_dead_tup')}, 1))"
    )
    if dead and (series := await q.trend(ratio_expr)):
        charts.append(
            q.chart("Highest dead-tuple ratio", [("dead / (live + dead)", s) for s in series], "ratio")
        )
    missing = [] if dead else ["pg_stat_user_tables_n_dead_tup (vacuum age)"]
    if q.catalog is None:
        missing.append("no read-only access to the target (statistics age)")
    if stale_vacuum or stale_stats:
        note = f" (no data: {'; '.join(missing)})" if missing else ""
        reason = (
            f"{len(stale_vacuum)} tables have {DEAD_RATIO:.0%}+ dead tuples and no vacuum in 7 days,"
            f" {len(stale_stats)} have statistics older than 7 days over changed rows{note}"
        )
        return Section(key, title, "attention", reason, charts, tables)
    if missing:
        found = (
            f"every table with {DEAD_RATIO:.0%}+ dead tuples was vacuumed within 7 days"
            if dead
            else "no table has statistics older than 7 days over changed rows"
        )
        return partly(key, title, missing, found, charts, tables)
    return Section(
        key, title, "ok", "every table with changes was vacuumed and analyzed within 7 days", charts, tables
    )


async def vacuum_runs(q: Inputs, key: str, title: str) -> Section:
    if q.vacuums is None:
        return no_data(key, title, "the journal (vacuum_analyze rows): give the report --config")
    done = [r for r in q.vacuums if r.get("state") == "done"]
    if not done:
        return Section(key, title, "attention", "no VACUUM ANALYZE ran through the responder in the period")
    bad = [r for r in done if r.get("outcome") not in ("succeeded", "dry_run", "cooldown", "duplicate")]
    rows = [
        (when(iso_ts(r["timings"].get("finished_at"))), str(r.get("target") or "-"), str(r["outcome"]),
         seconds(r["timings"].get("duration_seconds")), str(r.get("error") or ""))
        for r in sorted(done, key=lambda r: r["id"])
    ]  # fmt: skip
    table = Table("Runs of the period", ("finished", "table", "outcome", "duration", "error"), rows)
    if bad:
        return Section(
            key,
            title,
            "attention",
            f"{len(bad)} of {len(done)} VACUUM ANALYZE runs did not succeed",
            [],
            [table],
        )
    return Section(key, title, "ok", f"{len(done)} VACUUM ANALYZE runs, none failed", [], [table])
