"""The overview: availability, connections, long-running queries, throughput, cache, locks."""

from __future__ import annotations

from devtools.dashboards.panels import DATNAME, TARGET, TD, Dashboard, Panel, Row, T, W, graph, q, stat

OVERVIEW = Dashboard(
    "pgwarden-overview",
    "pgwarden / PostgreSQL overview",
    "Availability, connections, long-running queries, throughput, cache, locks and deadlocks per target.",
    (TARGET, DATNAME),
    (
        Row("Availability"),
        stat("Up", f"pg_up{{{T}}}", "{{target}}"),
        stat(
            "Connections used",
            f"pg_stat_activity_connections_ratio{{{T}}}",
            "{{target}}",
            unit="percentunit",
            max=1,
        ),
        stat(
            "Transaction ID wraparound",
            f"max by (target, datname) (pg_database_wraparound_ratio{{{TD}}})",
            "{{target}} {{datname}}",
            unit="percentunit",
            max=1,
        ),
        stat(
            "Replication lag",
            f"max by (target) (pg_replication_lag_seconds{{{T}}})",
            "{{target}}",
            unit="s",
            description="0 on a primary.",
        ),
        Row("Connections and queries"),
        graph(
            "Connections by state",
            f"sum by (target, state) (pg_stat_activity_count{{{TD}}})",
            "{{target}} {{state}}",
            stack=True,
        ),
        graph(
            "Long-running queries (active, by threshold)",
            f"sum by (target, threshold) (pg_stat_activity_long_running_queries{{{TD}}})",
            "{{target}} > {{threshold}}s",
        ),
        graph(
            "Oldest query by state",
            f"max by (target, state) (pg_stat_activity_oldest_query_seconds{{{TD}}})",
            "{{target}} {{state}}",
            unit="s",
        ),
        graph(
            "Longest transaction",
            f"max by (target, state) (pg_stat_activity_max_tx_duration{{{TD}}})",
            "{{target}} {{state}}",
            unit="s",
        ),
        Row("Throughput and cache"),
        Panel(
            "Transactions per second",
            [
                q(
                    f"sum by (target, datname) (rate(pg_stat_database_xact_commit{{{TD}}}{W}))",
                    "{{target}} {{datname}} commit",
                ),
                q(
                    f"sum by (target, datname) (rate(pg_stat_database_xact_rollback{{{TD}}}{W}))",
                    "{{target}} {{datname}} rollback",
                ),
            ],
            unit="ops",
        ),
        Panel(
            "Cache hit ratio",
            [
                q(
                    f"sum by (target, datname) (pg_stat_database_blks_hit{{{TD}}}) / ("
                    f"sum by (target, datname) (pg_stat_database_blks_hit{{{TD}}}) + "
                    f"sum by (target, datname) (pg_stat_database_blks_read{{{TD}}}))",
                    "{{target}} {{datname}}",
                )
            ],
            unit="percentunit",
            description="Since the statistics were reset: blocks found in shared buffers / blocks needed.",
            max=1,
        ),
        Panel(
            "Rows per second",
            [
                q(f"sum by (target) (rate(pg_stat_database_tup_{rows}{{{TD}}}{W}))", f"{{{{target}}}} {rows}")
                for rows in ("fetched", "inserted", "updated", "deleted")
            ],
            unit="rowsps",
        ),
        graph("Database size", f"pg_database_size_bytes{{{TD}}}", "{{target}} {{datname}}", unit="bytes"),
        Row("Locks and deadlocks"),
        graph(
            "Locks by mode",
            f"sum by (target, mode) (pg_locks_count{{{TD}}})",
            "{{target}} {{mode}}",
            stack=True,
        ),
        graph(
            "Lock waits",
            f"sum by (target, datname) (pg_locks_waiting{{{TD}}})",
            "{{target}} {{datname}}",
            description="Backends waiting for a lock.",
        ),
        graph(
            "Deadlocks",
            f"sum by (target, datname) (increase(pg_stat_database_deadlocks{{{TD}}}{W}))",
            "{{target}} {{datname}}",
        ),
        graph(
            "Exporter collectors failing",
            f"count by (target) (pg_scrape_collector_success{{{T}}} == 0) or "
            f"count by (target) (pg_scrape_collector_success{{{T}}}) * 0",
            "{{target}}",
            description="Collectors whose last run failed or timed out (0 is healthy).",
        ),
    ),
)
