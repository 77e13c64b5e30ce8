"""The queries dashboard: pg_stat_statements by total, mean and max time."""

from __future__ import annotations

from devtools.dashboards.panels import DATNAME, TARGET, TD, Dashboard, Panel, Row, W, graph, q, table

QUERIES = Dashboard(
    "pgwarden-queries",
    "pgwarden / Queries (pg_stat_statements)",
    "The statements that cost the most, by total and by mean execution time. Labels: user, datname, queryid "
    "(the query text is exported only with collectors.statements.include_query).",
    (TARGET, DATNAME),
    (
        Row("Top statements"),
        table(
            "Top 10 by total time",
            f"topk(10, sum by (target, datname, user, queryid) (pg_stat_statements_seconds_total{{{TD}}}))",
            "{{datname}} {{user}} {{queryid}}",
            unit="s",
        ),
        table(
            "Top 10 by mean time",
            f"topk(10, max by (target, datname, user, queryid) (pg_stat_statements_mean_seconds{{{TD}}}))",
            "{{datname}} {{user}} {{queryid}}",
            unit="s",
        ),
        Row("Over time"),
        graph(
            "Execution time per second, top 10",
            f"topk(10, sum by (target, datname, user, queryid) "
            f"(rate(pg_stat_statements_seconds_total{{{TD}}}{W})))",
            "{{datname}} {{user}} {{queryid}}",
            unit="s",
            description="Seconds of execution per second: how many backends this statement keeps busy.",
        ),
        graph(
            "Calls per second, top 10",
            f"topk(10, sum by (target, datname, user, queryid) "
            f"(rate(pg_stat_statements_calls_total{{{TD}}}{W})))",
            "{{datname}} {{user}} {{queryid}}",
            unit="ops",
        ),
        graph(
            "Max time, top 10",
            f"topk(10, max by (target, datname, user, queryid) (pg_stat_statements_max_seconds{{{TD}}}))",
            "{{datname}} {{user}} {{queryid}}",
            unit="s",
        ),
        graph(
            "Rows per second, top 10",
            f"topk(10, sum by (target, datname, user, queryid) "
            f"(rate(pg_stat_statements_rows_total{{{TD}}}{W})))",
            "{{datname}} {{user}} {{queryid}}",
            unit="rowsps",
        ),
        Panel(
            "Block I/O time per second",
            [
                q(
                    f"sum by (target, datname) (rate(pg_stat_statements_block_read_seconds_total{{{TD}}}{W}))",
                    "{{target}} {{datname}} read",
                ),
                q(
                    f"sum by (target, datname) (rate(pg_stat_statements_block_write_seconds_total{{{TD}}}{W}))",
                    "{{target}} {{datname}} write",
                ),
            ],
            unit="s",
            description="Needs track_io_timing = on.",
        ),
    ),
)
