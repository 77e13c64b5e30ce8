"""The weekly checklist: slow queries, index usage, connection pool (backup tests: `common.drill_section`)."""

from __future__ import annotations

from responder.report.catalog import statement_text
from responder.report.charts import bar_chart
from responder.report.model import Section, Table, Verdict, no_data
from responder.report.sections.common import (
    CONNECTIONS_HIGH,
    IDLE_IN_TX_HIGH,
    REGRESSION,
    SEQ_MIN_SCANS,
    SEQ_SHARE,
    SLOW_MEAN_SECONDS,
    TABLE,
    TOP,
    Inputs,
    by_labels,
    index_table,
    key_of,
    regex_of,
    seconds,
    size,
    unused_indexes,
)

STATEMENT = ("datname", "user", "queryid")


NO_TEXT = "no text: collectors.statements.include_query, or the report's --config with pg_stat_statements"


def _cut(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def _text(texts: dict[tuple[str, ...], str], key: tuple[str, ...]) -> str:
    text = texts.get(key)
    return f", {_cut(text, 60)}" if text else ""


def _series_label(texts: dict[tuple[str, ...], str], labels: dict[str, str]) -> str:
    text = texts.get(key_of(labels, *STATEMENT))
    return (
        f"{labels.get('datname', '')}: {_cut(text, 40) if text else 'queryid ' + labels.get('queryid', '')}"
    )


async def statement_texts(q: Inputs) -> dict[tuple[str, ...], str]:
    """Each statement's text: the exporter's (`pg_stat_statements_query_info`, with include_query), else the
    target's own pg_stat_statements (the report's --config); its string literals masked either way."""
    exported = {
        key_of(s.labels, *STATEMENT): statement_text(s.labels.get("query", ""))
        for s in await q.over("last_over_time", "pg_stat_statements_query_info")
    }
    texts: dict[tuple[str, ...], str] = dict(q.catalog.statements or {}) if q.catalog is not None else {}
    texts.update((k, v) for k, v in exported.items() if v)
    return texts


async def slow_queries(q: Inputs, key: str, title: str) -> Section:
    total = await q.instant(
        f"topk({TOP}, increase({q.m('pg_stat_statements_seconds_total')}[{q.period.window}]))"
    )
    mean_now = await q.over("last_over_time", "pg_stat_statements_mean_seconds")
    if not mean_now and not total:
        return no_data(key, title, "pg_stat_statements_mean_seconds, pg_stat_statements_seconds_total")
    mean = by_labels(mean_now, *STATEMENT)
    before = by_labels(
        await q.over("last_over_time", "pg_stat_statements_mean_seconds", offset=True), *STATEMENT
    )
    texts = await statement_texts(q)
    totals = {k: v for k, v in by_labels(total, *STATEMENT).items() if v > 0}

    def row(k: tuple[str, ...]) -> tuple[str, ...]:
        now, prev = mean.get(k), before.get(k)
        change = f"{(now / prev - 1) * 100:+.0f}%" if now is not None and prev else "new"
        text = _cut(texts[k], 120) if k in texts else f"queryid {k[2]} ({NO_TEXT})"
        return (k[0], text, seconds(now), seconds(prev), change, seconds(totals.get(k)))

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
        labelled = [(_series_label(texts, s.labels), s) for s in series]
        if labelled:
            charts.append(q.chart("Mean time of the slowest queries", labelled, "seconds"))
    verdict: Verdict
    if regressions:
        worst = regressions[0]
        verdict, reason = (
            "attention",
            (
                f"{len(regressions)} queries' mean time rose by more than 50% against the previous period"
                f" (worst: queryid {worst[2]}{_text(texts, worst)}, {seconds(before[worst])} to"
                f" {seconds(mean[worst])})"
            ),
        )
    elif by_mean and mean[by_mean[0]] > SLOW_MEAN_SECONDS:
        verdict, reason = (
            "attention",
            (
                f"the slowest query (queryid {by_mean[0][2]}{_text(texts, by_mean[0])}) averages"
                f" {seconds(mean[by_mean[0]])},"
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


async def index_usage(q: Inputs, key: str, title: str) -> Section:
    seen, unused = await unused_indexes(q)
    seq = by_labels(await q.over("increase", "pg_stat_user_tables_seq_scan"), *TABLE)
    idx = by_labels(await q.over("increase", "pg_stat_user_tables_idx_scan"), *TABLE)
    if not seen and not seq:
        return no_data(key, title, "pg_index_unused, pg_stat_user_tables_seq_scan")
    rows_read = by_labels(await q.over("increase", "pg_stat_user_tables_seq_tup_read"), *TABLE)
    seq_heavy = []
    for k, scans in seq.items():
        share = scans / (scans + idx.get(k, 0.0)) if scans else 0.0
        if scans >= SEQ_MIN_SCANS and share >= SEQ_SHARE:
            seq_heavy.append((k, scans, share))
    seq_heavy.sort(key=lambda item: -rows_read.get(item[0], 0.0))
    tables = [index_table("Unused indexes (never scanned during the period)", unused)]
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


async def connection_pool(q: Inputs, key: str, title: str) -> Section:
    total = f"sum({q.m('pg_stat_activity_count')})"
    idle = 'state=~"idle in transaction.*"'
    idle_tx = f"sum({q.m('pg_stat_activity_count', idle)})"
    peak = await q.peak(total)
    if peak is None:
        return no_data(key, title, "pg_stat_activity_count")
    limit = await q.over("last_over_time", "pg_settings_max_connections")
    peak_value = peak
    idle_value = await q.peak(idle_tx) or 0.0
    series = [("connections", s) for s in await q.trend(total)]
    series += [("idle in transaction", s) for s in await q.trend(idle_tx)]
    max_connections = max((s.value for s in limit), default=None)
    charts = [
        q.chart(
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
