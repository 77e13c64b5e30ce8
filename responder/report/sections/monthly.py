"""The monthly checklist: table bloat, vacuum and analyze age, what holds back vacuum, the VACUUM ANALYZE runs
(the disaster-recovery test: `common.drill_section`)."""

from __future__ import annotations

from responder.report.model import Section, Table, no_data, partly
from responder.report.prometheus import Series
from responder.report.sections.common import (
    BLOAT_RATIO,
    DEAD_RATIO,
    HORIZON_XIDS,
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


HORIZON = "pg_xmin_horizon_age_xids"
HOLDER = "pg_xmin_horizon_holder_info"
HOLDER_LABELS = ("datname", "pid", "usename", "application_name", "state", "slot_name", "gid")


def holder_text(labels: dict[str, str]) -> str:
    """A holder as the alert names it: "pid 4242, user app, application cron, idle in transaction"."""
    parts = (("pid", "pid "), ("usename", "user "), ("application_name", "application "), ("state", ""),
             ("slot_name", "slot "), ("gid", "prepared transaction "))  # fmt: skip
    return ", ".join(f"{prefix}{labels[k]}" for k, prefix in parts if labels.get(k)) or "-"


def xids(value: float) -> str:
    return f"{value:,.0f}"


async def vacuum_horizon(q: Inputs, key: str, title: str) -> Section:
    """The VACUUM horizon's age by cause over the period, and the holders that held it back the most (the
    exporter's `xmin_horizon` collector): a peak over HORIZON_XIDS, the alert's warning level, needs a look."""
    peaks = await q.over("max_over_time", HORIZON)
    if not peaks:
        return no_data(key, title, HORIZON)
    peak = {
        c: max(s.value for s in peaks if s.labels.get("cause") == c)
        for c in {s.labels["cause"] for s in peaks}
    }
    last = {s.labels.get("cause", ""): s.value for s in await q.over("last_over_time", HORIZON)}
    current = {s.labels.get("cause", ""): holder_text(s.labels) for s in await q.instant(q.m(HOLDER))}
    # each holder's highest age while it held the horizon, on a minute grid and at the end of the period
    held = (
        f"max without (state) ({q.m(HORIZON)} * on (job, instance, target, cause) "
        f"group_left ({', '.join(HOLDER_LABELS)}) {q.m(HOLDER)})"
    )
    worst: dict[tuple[str, ...], tuple[dict[str, str], float]] = {}
    for s in await q.instant(f"max_over_time(({held})[{q.period.window}:60s])") + await q.instant(held):
        k = key_of(s.labels, "cause", *HOLDER_LABELS)
        if k not in worst or s.value > worst[k][1]:
            worst[k] = (s.labels, s.value)
    holders = sorted(worst.values(), key=lambda item: -item[1])[:TOP]
    by_peak = sorted(peak.items(), key=lambda item: -item[1])
    tables = [
        Table(
            "The horizon by cause",
            ("cause", "age at the end (xids)", "peak in the period (xids)", "holder at the end"),
            [(c, xids(last.get(c, 0.0)), xids(v), current.get(c, "-")) for c, v in by_peak],
        ),
        Table(
            "Holders that held it back the most",
            ("cause", "holder", "database", "peak age (xids)"),
            [
                (lbl.get("cause", ""), holder_text(lbl), lbl.get("datname") or "-", xids(v))
                for lbl, v in holders
            ],
        ),
    ]
    charts = []
    if series := await q.trend(f"max by (cause) ({q.m(HORIZON)})"):
        charts.append(
            q.chart("VACUUM horizon age by cause", [(s.labels.get("cause", ""), s) for s in series], "xids")
        )
    cause, top = by_peak[0]
    culprit = next((f" ({holder_text(lbl)})" for lbl, _ in holders if lbl.get("cause") == cause), "")
    if top > HORIZON_XIDS:
        reason = (
            f"the VACUUM horizon reached {xids(top)} transaction IDs, over {xids(HORIZON_XIDS)}: "
            f"held by {cause}{culprit}"
        )
        return Section(key, title, "attention", reason, charts, tables)
    reason = (
        f"the VACUUM horizon stayed under {xids(HORIZON_XIDS)} transaction IDs "
        f"(oldest: {xids(top)}, {cause}{culprit})"
    )
    return Section(key, title, "ok", reason, charts, tables)


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
