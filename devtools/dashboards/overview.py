"""The overview: availability, connections, long-running queries, throughput, cache, locks, maintenance."""

from __future__ import annotations

from devtools.dashboards.panels import (
    DATNAME,
    TARGET,
    TD,
    Dashboard,
    Panel,
    Row,
    T,
    W,
    graph,
    q,
    stat,
    table,
    top,
)

OVERVIEW = Dashboard(
    "pgwarden-overview",
    "pgwarden / PostgreSQL overview",
    "Availability, connections, long-running queries, throughput, cache, locks and deadlocks, and maintenance "
    "(replication slots, sequences, invalid indexes, multixacts, checkpoints) per target.",
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
        Row("Maintenance"),
        graph(
            "Replication slot WAL retained",
            f"pg_replication_slots_pg_wal_lsn_diff{{{T}}}",
            "{{target}} {{slot_name}}",
            unit="bytes",
            description="WAL each slot holds back; a forgotten slot fills the disk.",
        ),
        Panel(
            "Replication slots",
            [
                top(
                    f"max by (target, slot_name, slot_type, wal_status) (pg_replication_slots_wal_status{{{T}}})",
                    "{{target}} {{slot_name}} {{wal_status}}",
                ),
                top(
                    f"max by (target, slot_name, slot_type) (pg_replication_slots_slot_is_active{{{T}}})",
                    "{{target}} {{slot_name}} active",
                ),
            ],
            kind="table",
            description="WAL status (reserved, extended, unreserved, lost) and whether a consumer is attached.",
        ),
        Panel(
            "Sequences most used",
            [
                top(
                    f"topk(10, pg_sequence_used_ratio{{{TD}}})",
                    "{{target}} {{datname}} {{schemaname}}.{{sequencename}}",
                )
            ],
            unit="percentunit",
            kind="table",
            description="Part of each sequence's range used (alerts at 0.8 and 0.9).",
        ),
        table(
            "Invalid indexes",
            f"pg_index_invalid{{{TD}}}",
            "{{target}} {{datname}} {{schemaname}}.{{relname}} {{indexrelname}}",
        ),
        graph(
            "Multixact ID age",
            f"max by (target, datname) (pg_database_wraparound_age_datminmxid_seconds{{{TD}}}) / 2^31",
            "{{target}} {{datname}}",
            unit="percentunit",
            description="mxid_age(datminmxid) as a part of the 2^31 limit (alerts at 0.5 and 0.75); the "
            "metric counts multixacts, whatever its suffix says.",
        ),
        graph(
            "Rollback ratio",
            f"sum by (target, datname) (rate(pg_stat_database_xact_rollback{{{TD}}}{W})) / ("
            f"sum by (target, datname) (rate(pg_stat_database_xact_rollback{{{TD}}}{W})) + "
            f"sum by (target, datname) (rate(pg_stat_database_xact_commit{{{TD}}}{W})))",
            "{{target}} {{datname}}",
            unit="percentunit",
            description="Rolled-back transactions / all transactions (PostgresTooManyRollbacks above 0.1).",
        ),
        Panel(
            "Checkpoints: requested vs timed",
            [
                q(
                    f"sum by (target) (rate(pg_stat_bgwriter_checkpoints_req_total{{{T}}}{W})) * 3600",
                    "{{target}} requested",
                ),
                q(
                    f"sum by (target) (rate(pg_stat_bgwriter_checkpoints_timed_total{{{T}}}{W})) * 3600",
                    "{{target}} timed",
                ),
            ],
            description="Checkpoints per hour; mostly requested means max_wal_size is too small.",
        ),
        graph(
            "Checksum failures",
            f"sum by (target, datname) (increase(pg_stat_database_checksum_failures{{{TD}}}{W}))",
            "{{target}} {{datname}}",
            description="Data page checksum failures (only with data checksums on): corruption on disk.",
        ),
    ),
)
