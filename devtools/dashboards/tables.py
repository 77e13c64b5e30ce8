"""The tables and indexes dashboard."""

from __future__ import annotations

from devtools.dashboards.panels import DATNAME, TARGET, TD, Dashboard, Panel, Row, T, W, graph, q, table, top

TABLES = Dashboard(
    "pgwarden-tables",
    "pgwarden / Tables and indexes",
    "Bloat, dead tuples, vacuum age and what holds it back, unused indexes and sequential versus index scans, in "
    "every database.",
    (TARGET, DATNAME),
    (
        Row("Bloat and dead tuples"),
        table(
            "Estimated bloat, top 10",
            f"topk(10, pg_table_bloat_bytes{{{TD}}})",
            "{{datname}}.{{schemaname}}.{{relname}}",
            unit="bytes",
        ),
        table(
            "Bloat ratio, top 10",
            f"topk(10, pg_table_bloat_ratio{{{TD}}})",
            "{{datname}}.{{schemaname}}.{{relname}}",
            unit="percentunit",
        ),
        graph(
            "Dead tuples, top 10",
            f"topk(10, pg_stat_user_tables_n_dead_tup{{{TD}}})",
            "{{datname}}.{{schemaname}}.{{relname}}",
        ),
        graph(
            "Dead tuple ratio, top 10",
            f"topk(10, pg:stat_user_tables_n_dead_tup:ratio{{{TD}}} >= 0)",
            "{{datname}}.{{schemaname}}.{{relname}}",
            unit="percentunit",
        ),
        Row("Vacuum"),
        Panel(
            "Time since last vacuum, top 10",
            [
                top(
                    "topk(10, time() - max by (target, datname, schemaname, relname) "
                    f'({{__name__=~"pg_stat_user_tables_last_(auto)?vacuum", {TD}}}))',
                    "{{datname}}.{{schemaname}}.{{relname}}",
                )
            ],
            unit="s",
            kind="table",
            description="Manual or automatic, whichever is newer. Tables never vacuumed have no row here.",
        ),
        graph(
            "Transaction ID age by database",
            f"pg_database_xid_age{{{TD}}}",
            "{{target}} {{datname}}",
            description="Anti-wraparound autovacuum starts at autovacuum_freeze_max_age (200 million by default).",
        ),
        graph(
            "VACUUM horizon age by cause",
            f"pg_xmin_horizon_age_xids{{{T}}}",
            "{{target}} {{cause}}",
            description="Transactions since the oldest xmin each cause holds (a transaction, a prepared "
            "transaction, a slot's xmin or catalog_xmin, a standby's feedback): VACUUM removes no row version "
            "newer than the oldest. PostgresVacuumHorizonHeldBack fires over 10 million.",
        ),
        table(
            "What holds back vacuum",
            f"pg_xmin_horizon_age_xids{{{T}}} * on (job, instance, target, cause) group_left (datname, pid, "
            f"usename, application_name, state, slot_name, gid) pg_xmin_horizon_holder_info{{{T}}}",
            "{{target}} {{cause}} {{pid}} {{application_name}} {{slot_name}} {{gid}}",
        ),
        graph(
            "Vacuums per minute",
            f"sum by (target, datname) (rate(pg_stat_user_tables_vacuum_count{{{TD}}}{W}) + "
            f"rate(pg_stat_user_tables_autovacuum_count{{{TD}}}{W})) * 60",
            "{{target}} {{datname}}",
        ),
        graph(
            "Modified rows since analyze, top 10",
            f"topk(10, pg_stat_user_tables_n_mod_since_analyze{{{TD}}})",
            "{{datname}}.{{schemaname}}.{{relname}}",
        ),
        Row("Indexes and scans"),
        table(
            "Unused indexes (never scanned, not unique) by size",
            f"pg_index_size_bytes{{{TD}}} and on (target, datname, schemaname, relname, indexrelname) "
            f"(pg_index_unused{{{TD}}} == 1)",
            "{{datname}}.{{schemaname}}.{{indexrelname}}",
            unit="bytes",
        ),
        Panel(
            "Sequential vs index scans",
            [
                q(
                    f"sum by (target, datname) (rate(pg_stat_user_tables_seq_scan{{{TD}}}{W}))",
                    "{{datname}} seq",
                ),
                q(
                    f"sum by (target, datname) (rate(pg_stat_user_tables_idx_scan{{{TD}}}{W}))",
                    "{{datname}} index",
                ),
            ],
            unit="ops",
        ),
        table(
            "Share of sequential scans, top 10 tables",
            f"topk(10, pg_stat_user_tables_seq_scan{{{TD}}} / "
            f"(pg_stat_user_tables_seq_scan{{{TD}}} + pg_stat_user_tables_idx_scan{{{TD}}} > 0))",
            "{{datname}}.{{schemaname}}.{{relname}}",
            unit="percentunit",
        ),
        graph(
            "Rows read by sequential scans, top 10",
            f"topk(10, rate(pg_stat_user_tables_seq_tup_read{{{TD}}}{W}))",
            "{{datname}}.{{schemaname}}.{{relname}}",
            unit="rowsps",
        ),
        table(
            "Largest tables",
            f"topk(10, pg_stat_user_tables_table_size_bytes{{{TD}}} + "
            f"pg_stat_user_tables_index_size_bytes{{{TD}}})",
            "{{datname}}.{{schemaname}}.{{relname}}",
            unit="bytes",
        ),
        graph(
            "Cache hit ratio by table, lowest 10",
            f"bottomk(10, pg_statio_user_tables_heap_blocks_hit{{{TD}}} / "
            f"(pg_statio_user_tables_heap_blocks_hit{{{TD}}} + pg_statio_user_tables_heap_blocks_read{{{TD}}} > 0))",
            "{{datname}}.{{schemaname}}.{{relname}}",
            unit="percentunit",
        ),
    ),
)
