"""One function per checklist item of the runbook; each returns a `Section` with a verdict and its reason.

A section reads Prometheus over the period (the exporter's series), the journal (drills, VACUUM ANALYZE
runs) or the target's catalog. What it lacks, it names (`no data: <metric>`): it never guesses a verdict.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from responder.report.catalog import Catalog
from responder.report.charts import bar_chart, line_chart
from responder.report.model import Period, Section, Table, Verdict, no_data
from responder.report.prometheus import Prometheus, PrometheusError, Sample, Series

SLOW_MEAN_SECONDS = 1.0  # a query averaging more than this needs a look
REGRESSION = 0.5  # mean time up by more than 50% against the previous period
SEQ_SHARE = 0.9  # a table read by sequential scans this share of the time ...
SEQ_MIN_SCANS = 100  # ... with at least this many of them in the period
CONNECTIONS_HIGH = 0.8  # peak connections against max_connections
IDLE_IN_TX_HIGH = 5
BLOAT_RATIO = 0.3
STALE_SECONDS = 7 * 86400.0  # vacuum and statistics older than this, on a table that changed
DEAD_RATIO = 0.2
CPU_UP, CPU_DOWN, CPU_DOWN_MAX = 70.0, 20.0, 40.0  # percent
MEMORY_LOW, MEMORY_SPARE = 256 * 2**20, 2 * 2**30  # freeable memory, bytes
EOL_WARNING_DAYS = 180
TOP = 10
# PostgreSQL community end-of-life dates (https://www.postgresql.org/support/versioning/); RDS follows them.
POSTGRES_EOL = {
    11: date(2023, 11, 9), 12: date(2024, 11, 21), 13: date(2025, 11, 13), 14: date(2026, 11, 12),
    15: date(2027, 11, 11), 16: date(2028, 11, 9), 17: date(2029, 11, 8), 18: date(2030, 11, 14),
}  # fmt: skip


@dataclass
class Inputs:
    """Everything the sections read. `drills`/`vacuums` are journal rows of the period (None: no journal);
    `catalog` the target's own facts (None: no access to the target)."""

    prometheus: Prometheus
    selector: str  # extra PromQL label matchers for every series, e.g. `target="production"`
    period: Period
    drills: list[dict[str, Any]] | None = None
    vacuums: list[dict[str, Any]] | None = None
    catalog: Catalog | None = None

    def m(self, name: str, *matchers: str) -> str:
        """A series selector with the report's own matchers."""
        return f"{name}{{{','.join(x for x in (self.selector, *matchers) if x)}}}"

    async def instant(self, expr: str) -> list[Sample]:
        return await self.prometheus.instant(expr, self.period.end)

    async def over(self, fn: str, name: str, *matchers: str, offset: bool = False) -> list[Sample]:
        """`fn(name{...}[period])` at the end of the period (or of the one before, with `offset`)."""
        shift = f" offset {self.period.window}" if offset else ""
        return await self.instant(f"{fn}({self.m(name, *matchers)}[{self.period.window}]{shift})")

    async def trend(self, expr: str) -> list[Series]:
        """`expr` over the period, each point the maximum of its step (so a short burst still shows)."""
        p = self.period
        return await self.prometheus.range(
            f"max_over_time(({expr})[{int(p.step)}s:60s])", p.start, p.end, p.step
        )


SectionBuilder = Callable[[Inputs], Awaitable[Section]]


def regex_of(values: Sequence[str]) -> str:
    """A PromQL string literal body that full-matches exactly these values."""
    return "|".join(re.escape(v) for v in values).replace("\\", "\\\\").replace('"', '\\"')


def _key(labels: dict[str, str], *names: str) -> tuple[str, ...]:
    return tuple(labels.get(n, "") for n in names)


def _by(samples: list[Sample], *names: str) -> dict[tuple[str, ...], float]:
    return {_key(s.labels, *names): s.value for s in samples}


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 86400:
        return f"{value / 86400:.1f} d"
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    return f"{value:.3g} s" if value < 60 else f"{value / 60:.1f} min"


def size(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _iso_ts(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ---- weekly -------------------------------------------------------------------------------------------------

STATEMENT = ("datname", "user", "queryid")


async def slow_queries(q: Inputs) -> Section:
    key, title = "slow_queries", "Slow queries"
    total = await q.instant(
        f"topk({TOP}, increase({q.m('pg_stat_statements_seconds_total')}[{q.period.window}]))"
    )
    mean_now = await q.over("last_over_time", "pg_stat_statements_mean_seconds")
    if not mean_now and not total:
        return no_data(key, title, "pg_stat_statements_mean_seconds, pg_stat_statements_seconds_total")
    mean = _by(mean_now, *STATEMENT)
    before = _by(await q.over("last_over_time", "pg_stat_statements_mean_seconds", offset=True), *STATEMENT)
    texts = {
        _key(s.labels, *STATEMENT): s.labels.get("query", "")
        for s in await q.over("last_over_time", "pg_stat_statements_query_info")
    }
    totals = _by(total, *STATEMENT)

    def row(k: tuple[str, ...]) -> tuple[str, ...]:
        now, prev = mean.get(k), before.get(k)
        change = f"{(now / prev - 1) * 100:+.0f}%" if now is not None and prev else "new"
        text = texts.get(k) or f"queryid {k[2]} (enable collectors.statements.include_query for the text)"
        return (k[0], text[:120], seconds(now), seconds(prev), change, seconds(totals.get(k)))

    columns = ("database", "query", "mean", "previous mean", "change", "total in period")
    by_total = sorted(totals, key=lambda k: -totals[k])[:TOP]
    by_mean = sorted(mean, key=lambda k: -mean[k])[:TOP]
    regressions = [
        k for k in mean if before.get(k) and mean[k] > (1 + REGRESSION) * before[k] and mean[k] >= 0.001
    ]
    regressions.sort(key=lambda k: -(mean[k] / before[k]))
    tables = [
        Table("Top by total time", columns, [row(k) for k in by_total]),
        Table("Top by mean time", columns, [row(k) for k in by_mean]),
    ]
    if regressions:
        tables.insert(
            0, Table("Regressions (mean time up by more than 50%)", columns, [row(k) for k in regressions])
        )
    charts = []
    if by_mean:
        ids = regex_of([k[2] for k in by_mean[:5]])
        series = await q.trend(q.m("pg_stat_statements_mean_seconds", f'queryid=~"{ids}"'))
        labelled = [(f"{s.labels.get('datname', '')} {s.labels.get('queryid', '')}", s) for s in series]
        if labelled:
            charts.append(line_chart("Mean time of the slowest queries", labelled, "seconds"))
    verdict: Verdict
    if regressions:
        worst = regressions[0]
        verdict, reason = (
            "attention",
            (
                f"{len(regressions)} queries' mean time rose by more than 50% against the previous period"
                f" (worst: queryid {worst[2]}, {seconds(before[worst])} to {seconds(mean[worst])})"
            ),
        )
    elif by_mean and mean[by_mean[0]] > SLOW_MEAN_SECONDS:
        verdict, reason = (
            "attention",
            (
                f"the slowest query (queryid {by_mean[0][2]}) averages {seconds(mean[by_mean[0]])},"
                f" over {SLOW_MEAN_SECONDS:g} s, with no regression against the previous period"
            ),
        )
    else:
        slowest = seconds(mean[by_mean[0]]) if by_mean else "-"
        verdict, reason = (
            "ok",
            f"no regression against the previous period; the slowest query averages {slowest}",
        )
    return Section(key, title, verdict, reason, charts, tables)


INDEX = ("datname", "schemaname", "relname", "indexrelname")
TABLE = ("datname", "schemaname", "relname")


async def _unused_indexes(q: Inputs) -> tuple[bool, list[tuple[tuple[str, ...], float]]]:
    """(whether the series exist, the indexes unused during the whole period with their size)."""
    seen = await q.over("max_over_time", "pg_index_unused")
    unused = [s for s in await q.over("min_over_time", "pg_index_unused") if s.value == 1]
    sizes = _by(await q.over("last_over_time", "pg_index_size_bytes"), *INDEX)
    found = [(_key(s.labels, *INDEX), sizes.get(_key(s.labels, *INDEX), 0.0)) for s in unused]
    return bool(seen), sorted(found, key=lambda item: -item[1])


def _index_table(caption: str, unused: list[tuple[tuple[str, ...], float]]) -> Table:
    return Table(
        caption,
        ("database", "table", "index", "size"),
        [(k[0], f"{k[1]}.{k[2]}", k[3], size(v)) for k, v in unused[: TOP * 2]],
    )


async def index_usage(q: Inputs) -> Section:
    key, title = "index_usage", "Index usage"
    seen, unused = await _unused_indexes(q)
    seq = _by(await q.over("increase", "pg_stat_user_tables_seq_scan"), *TABLE)
    idx = _by(await q.over("increase", "pg_stat_user_tables_idx_scan"), *TABLE)
    if not seen and not seq:
        return no_data(key, title, "pg_index_unused, pg_stat_user_tables_seq_scan")
    rows_read = _by(await q.over("increase", "pg_stat_user_tables_seq_tup_read"), *TABLE)
    seq_heavy = []
    for k, scans in seq.items():
        share = scans / (scans + idx.get(k, 0.0)) if scans else 0.0
        if scans >= SEQ_MIN_SCANS and share >= SEQ_SHARE:
            seq_heavy.append((k, scans, share))
    seq_heavy.sort(key=lambda item: -rows_read.get(item[0], 0.0))
    tables = [_index_table("Unused indexes (never scanned during the period)", unused)]
    tables.append(
        Table(
            "Tables dominated by sequential scans",
            ("database", "table", "sequential scans", "share", "rows read sequentially"),
            [
                (k[0], f"{k[1]}.{k[2]}", f"{s:.0f}", f"{share:.0%}", f"{rows_read.get(k, 0):.0f}")
                for k, s, share in seq_heavy[:TOP]
            ],
        )
    )
    charts = []
    if unused:
        bars = [(f"{k[2]}.{k[3]}", v / 2**20) for k, v in unused[:TOP]]
        charts.append(bar_chart("Unused indexes by size", bars, "MiB"))
    if unused or seq_heavy:
        wasted = size(sum(v for _, v in unused))
        reason = (
            f"{len(unused)} unused indexes ({wasted}) and {len(seq_heavy)} tables read mostly by"
            " sequential scans"
        )
        return Section(key, title, "attention", reason, charts, tables)
    return Section(
        key, title, "ok", "every index was used and no table is dominated by sequential scans", charts, tables
    )


def _is_cross_region(result: dict[str, Any]) -> bool:
    return result.get("cross_region") is True or "cross-region" in str(result.get("source", ""))


def drill_section(key: str, title: str, cross_region_only: bool = False) -> SectionBuilder:
    """The restore drills journaled in the period (`restore_drill` rows), with restore time and recovery
    point age; no drill in the period is itself the finding."""

    async def build(q: Inputs) -> Section:
        if q.drills is None:
            return no_data(key, title, "the journal (restore_drill rows): give the report --config")
        rows = [r for r in q.drills if r.get("outcome") in ("succeeded", "failed")]
        if cross_region_only:
            rows = [r for r in rows if _is_cross_region(r.get("result") or {})]
        what = "cross-region restore drill" if cross_region_only else "restore drill"
        if not rows:
            return Section(key, title, "attention", f"no {what} was journaled in the period")
        table_rows = []
        failed = 0
        points: list[tuple[float, float]] = []
        for r in sorted(rows, key=lambda r: r["id"]):
            result = r.get("result") or {}
            checks = result.get("checks") or []
            passed = sum(1 for c in checks if c.get("passed"))
            ok = r["outcome"] == "succeeded" and passed == len(checks)
            failed += not ok
            finished = _iso_ts(r["timings"].get("finished_at")) or 0.0
            restore = result.get("restore_seconds")
            if isinstance(restore, int | float):
                points.append((finished, float(restore)))
            table_rows.append((
                when(finished), str(result.get("dbidentifier", "-")), str(result.get("source", "-")),
                seconds(restore if isinstance(restore, int | float) else None),
                seconds(result.get("recovery_point_age_seconds")), f"{passed}/{len(checks)}",
                "passed" if ok else (r.get("error") or "a check failed"),
            ))  # fmt: skip
        table = Table(
            f"{what.capitalize()}s of the period",
            ("finished", "instance", "source", "restore", "recovery point age", "checks", "result"),
            table_rows,
        )
        charts = []
        if points:
            charts.append(
                line_chart("Restore time per drill", [("restore seconds", Series({}, points))], "seconds")
            )
        if failed:
            return Section(
                key, title, "attention", f"{failed} of {len(rows)} {what}s failed", charts, [table]
            )
        slowest = max((p[1] for p in points), default=None)
        return Section(
            key, title, "ok", f"{len(rows)} {what}s passed every check (slowest restore {seconds(slowest)})",
            charts, [table],
        )  # fmt: skip

    return build


async def connection_pool(q: Inputs) -> Section:
    key, title = "connection_pool", "Connection pool"
    w = q.period.window
    total = f"sum({q.m('pg_stat_activity_count')})"
    idle = 'state=~"idle in transaction.*"'
    idle_tx = f"sum({q.m('pg_stat_activity_count', idle)})"
    peak = await q.instant(f"max_over_time({total}[{w}:60s])")
    if not peak:
        return no_data(key, title, "pg_stat_activity_count")
    limit = await q.over("last_over_time", "pg_settings_max_connections")
    idle_peak = await q.instant(f"max_over_time({idle_tx}[{w}:60s])")
    peak_value = peak[0].value
    idle_value = idle_peak[0].value if idle_peak else 0.0
    series = [("connections", s) for s in await q.trend(total)]
    series += [("idle in transaction", s) for s in await q.trend(idle_tx)]
    max_connections = max((s.value for s in limit), default=None)
    charts = [
        line_chart(
            "Connections",
            series,
            "connections",
            ("max_connections", max_connections) if max_connections else None,
        )
    ] if series else []  # fmt: skip
    table = Table(
        "Peaks of the period",
        ("measure", "value"),
        [
            ("peak connections", f"{peak_value:.0f}"),
            (
                "max_connections",
                f"{max_connections:.0f}" if max_connections else "no data: pg_settings_max_connections",
            ),
            ("peak idle in transaction", f"{idle_value:.0f}"),
        ],
    )
    if max_connections is None:
        return Section(key, title, "no data", "no data: pg_settings_max_connections", charts, [table])
    share = peak_value / max_connections
    problems = []
    if share >= CONNECTIONS_HIGH:
        problems.append(f"connections peaked at {peak_value:.0f} of {max_connections:.0f} ({share:.0%})")
    if idle_value >= IDLE_IN_TX_HIGH:
        problems.append(f"{idle_value:.0f} sessions were idle in transaction at once")
    if problems:
        return Section(key, title, "attention", "; ".join(problems), charts, [table])
    reason = (
        f"connections peaked at {peak_value:.0f} of {max_connections:.0f} ({share:.0%}),"
        f" idle in transaction at {idle_value:.0f}"
    )
    return Section(key, title, "ok", reason, charts, [table])


# ---- monthly ------------------------------------------------------------------------------------------------


async def table_bloat(q: Inputs) -> Section:
    key, title = "table_bloat", "Table bloat"
    top = await q.instant(f"topk({TOP}, last_over_time({q.m('pg_table_bloat_bytes')}[{q.period.window}]))")
    if not top:
        return no_data(key, title, "pg_table_bloat_bytes")
    ratio = _by(await q.over("last_over_time", "pg_table_bloat_ratio"), *TABLE)
    top.sort(key=lambda s: -s.value)
    rows = [
        (k[0], f"{k[1]}.{k[2]}", size(s.value), f"{ratio[k]:.0%}" if k in ratio else "-")
        for s in top
        for k in [_key(s.labels, *TABLE)]
    ]
    names = regex_of([s.labels.get("relname", "") for s in top[:5]])
    series = await q.trend(q.m("pg_table_bloat_bytes", f'relname=~"{names}"'))
    charts = [
        line_chart(
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


async def vacuum_age(q: Inputs) -> Section:
    key, title = "vacuum_age", "Vacuum and analyze age"
    now = q.period.end
    last: dict[tuple[str, ...], float] = {}
    for name in ("pg_stat_user_tables_last_vacuum", "pg_stat_user_tables_last_autovacuum"):
        for k, v in _by(await q.over("last_over_time", name), *TABLE).items():
            last[k] = max(v, last.get(k, 0.0))
    dead = _by(await q.over("last_over_time", "pg_stat_user_tables_n_dead_tup"), *TABLE)
    live = _by(await q.over("last_over_time", "pg_stat_user_tables_n_live_tup"), *TABLE)
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
            line_chart("Highest dead-tuple ratio", [("dead / (live + dead)", s) for s in series], "ratio")
        )
    statistics = "" if q.catalog is not None else " (statistics age: no read-only access to the target)"
    if stale_vacuum or stale_stats:
        reason = (
            f"{len(stale_vacuum)} tables have {DEAD_RATIO:.0%}+ dead tuples and no vacuum in 7 days,"
            f" {len(stale_stats)} have statistics older than 7 days over changed rows{statistics}"
        )
        return Section(key, title, "attention", reason, charts, tables)
    return Section(
        key,
        title,
        "ok",
        f"every table with changes was vacuumed and analyzed within 7 days{statistics}",
        charts,
        tables,
    )


async def vacuum_runs(q: Inputs) -> Section:
    key, title = "vacuum_runs", "Scheduled VACUUM ANALYZE runs"
    if q.vacuums is None:
        return no_data(key, title, "the journal (vacuum_analyze rows): give the report --config")
    done = [r for r in q.vacuums if r.get("state") == "done"]
    if not done:
        return Section(key, title, "attention", "no VACUUM ANALYZE ran through the responder in the period")
    bad = [r for r in done if r.get("outcome") not in ("succeeded", "dry_run", "cooldown", "duplicate")]
    rows = [
        (when(_iso_ts(r["timings"].get("finished_at"))), str(r.get("target") or "-"), str(r["outcome"]),
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


# ---- quarterly ----------------------------------------------------------------------------------------------


async def index_review(q: Inputs) -> Section:
    key, title = "index_review", "Index review"
    seen, unused = await _unused_indexes(q)
    if not seen and q.catalog is None:
        return no_data(key, title, "pg_index_unused (and no read-only access to the target for duplicates)")
    tables = [_index_table("Unused for the whole quarter", unused)] if seen else []
    duplicates = q.catalog.duplicates if q.catalog is not None else []
    if q.catalog is not None:
        tables.append(
            Table(
                f"Duplicate indexes over the same columns (database {q.catalog.database})",
                ("table", "indexes", "their size"),
                [(d.table, ", ".join(d.indexes), size(d.bytes)) for d in duplicates],
            )
        )
    missing = [] if seen else ["unused: no data: pg_index_unused"]
    if q.catalog is None:
        missing.append("duplicates: no read-only access to the target")
    note = f" ({'; '.join(missing)})" if missing else ""
    if unused or duplicates:
        reason = (
            f"{len(unused)} indexes unused all quarter, {len(duplicates)} sets of duplicate indexes{note}"
        )
        return Section(key, title, "attention", reason, [], tables)
    return Section(
        key, title, "ok", f"no index unused all quarter and no duplicate indexes{note}", [], tables
    )


async def instance_sizing(q: Inputs) -> Section:
    key, title = "instance_sizing", "Instance sizing"
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
        [line_chart("CPU", [("CPU %", s) for s in series], "percent", ("one class up above", CPU_UP))]
        if series
        else []
    )
    verdict: Verdict = "ok" if advice == "keep" else "attention"
    return Section(key, title, verdict, f"{advice}: {numbers}", charts, [table])


def _major(version: str) -> int | None:
    match = re.match(r"(\d+)", version)
    return int(match.group(1)) if match else None


async def security_patches(q: Inputs) -> Section:
    key, title = "security_patches", "Security patches"
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
    upgrading = [s for s in statuses if s.value in (5, 6)]  # maintenance, upgrading (the exporter's codes)
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


SECTIONS: dict[str, list[tuple[str, str, SectionBuilder]]] = {
    "weekly": [
        ("slow_queries", "Slow queries", slow_queries),
        ("index_usage", "Index usage", index_usage),
        ("backup_tests", "Backup test results", drill_section("backup_tests", "Backup test results")),
        ("connection_pool", "Connection pool", connection_pool),
    ],
    "monthly": [
        ("table_bloat", "Table bloat", table_bloat),
        ("vacuum_age", "Vacuum and analyze age", vacuum_age),
        ("vacuum_runs", "Scheduled VACUUM ANALYZE runs", vacuum_runs),
        ("dr_test", "Disaster-recovery test", drill_section("dr_test", "Disaster-recovery test")),
    ],
    "quarterly": [
        ("index_review", "Index review", index_review),
        ("instance_sizing", "Instance sizing", instance_sizing),
        ("security_patches", "Security patches", security_patches),
        (
            "cross_region",
            "Cross-region recovery test",
            drill_section("cross_region", "Cross-region recovery test", cross_region_only=True),
        ),
    ],
}


async def build_section(key: str, title: str, builder: SectionBuilder, q: Inputs) -> Section:
    """One section; a Prometheus that fails answers `no data` with the reason, never a verdict."""
    try:
        return await builder(q)
    except PrometheusError as exc:
        return no_data(key, title, f"Prometheus did not answer ({exc})")
