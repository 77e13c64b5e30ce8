"""pgwarden's Grafana dashboards, built from compact panel definitions.

`python -m devtools.dashboards` writes `grafana/dashboards/*.json`; `--check` exits 1 when a committed file
differs from what this module builds (a test checks the same). Edit the definitions here, never the JSON.

Every panel queries the datasource provisioned by `grafana/provisioning/datasources/prometheus.yml` (uid
`DATASOURCE_UID`). Template variables are regex matchers with `allValue: ".*"`, so "All" also matches series
without the label (e.g. `target` when the exporter serves a single server, or RDS instances that AWS
discovery found and no configured target names).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATASOURCE_UID = "pgwarden-prometheus"
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": DATASOURCE_UID}
OUTPUT_DIR = Path(__file__).resolve().parent.parent / "grafana" / "dashboards"
SCHEMA_VERSION = 39
TAGS = ("pgwarden",)

# Label matchers shared by the panels.
T = 'target=~"$target"'
TD = 'target=~"$target", datname=~"$datname"'
RDS = 'target=~"$target", dbidentifier=~"$dbidentifier"'
RI = 'instance=~"$instance"'
RIP = 'instance=~"$instance", playbook=~"$playbook"'
W = "[$__rate_interval]"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    """One panel: `kind` is timeseries, stat or table (tables run instant queries)."""

    title: str
    queries: Sequence[Query]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    description: str = ""
    stack: bool = False
    max: float | None = None


@dataclass(frozen=True)
class Row:
    title: str


@dataclass(frozen=True)
class Variable:
    """A query variable: `label_values(<query>, <label>)`, multi-select with an All of `.*`."""

    name: str
    label: str
    query: str


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    variables: Sequence[Variable]
    items: Sequence[Panel | Row] = field(default_factory=tuple)


def q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


def top(expr: str, legend: str = "") -> Query:
    return Query(expr, legend, instant=True)


# ---- variables --------------------------------------------------------------------------------------------

TARGET = Variable("target", "Target", "label_values(pg_up, target)")
DATNAME = Variable(
    "datname", "Database", 'label_values(pg_stat_database_numbackends{target=~"$target"}, datname)'
)
DBIDENTIFIER = Variable(
    "dbidentifier", "RDS instance", 'label_values(rds_instance_info{target=~"$target"}, dbidentifier)'
)
INSTANCE = Variable("instance", "Responder", "label_values(pgwarden_responder_journal_up, instance)")
PLAYBOOK = Variable(
    "playbook", "Playbook", 'label_values(pgwarden_responder_actions_total{instance=~"$instance"}, playbook)'
)

# ---- dashboards -------------------------------------------------------------------------------------------

OVERVIEW = Dashboard(
    "pgwarden-overview",
    "pgwarden / PostgreSQL overview",
    "Availability, connections, long-running queries, throughput, cache, locks and deadlocks per target.",
    (TARGET, DATNAME),
    (
        Row("Availability"),
        Panel("Up", [q(f"pg_up{{{T}}}", "{{target}}")], kind="stat", width=6, height=4),
        Panel(
            "Connections used",
            [q(f"pg_stat_activity_connections_ratio{{{T}}}", "{{target}}")],
            unit="percentunit",
            kind="stat",
            width=6,
            height=4,
            max=1,
        ),
        Panel(
            "Transaction ID wraparound",
            [q(f"max by (target, datname) (pg_database_wraparound_ratio{{{TD}}})", "{{target}} {{datname}}")],
            unit="percentunit",
            kind="stat",
            width=6,
            height=4,
            max=1,
        ),
        Panel(
            "Replication lag",
            [q(f"max by (target) (pg_replication_lag_seconds{{{T}}})", "{{target}}")],
            unit="s",
            kind="stat",
            width=6,
            height=4,
            description="0 on a primary.",
        ),
        Row("Connections and queries"),
        Panel(
            "Connections by state",
            [q(f"sum by (target, state) (pg_stat_activity_count{{{TD}}})", "{{target}} {{state}}")],
            stack=True,
        ),
        Panel(
            "Long-running queries (active, by threshold)",
            [
                q(
                    f"sum by (target, threshold) (pg_stat_activity_long_running_queries{{{TD}}})",
                    "{{target}} > {{threshold}}s",
                )
            ],
        ),
        Panel(
            "Oldest query by state",
            [
                q(
                    f"max by (target, state) (pg_stat_activity_oldest_query_seconds{{{TD}}})",
                    "{{target}} {{state}}",
                )
            ],
            unit="s",
        ),
        Panel(
            "Longest transaction",
            [q(f"max by (target, state) (pg_stat_activity_max_tx_duration{{{TD}}})", "{{target}} {{state}}")],
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
                q(f"sum by (target) (rate(pg_stat_database_tup_fetched{{{TD}}}{W}))", "{{target}} fetched"),
                q(f"sum by (target) (rate(pg_stat_database_tup_inserted{{{TD}}}{W}))", "{{target}} inserted"),
                q(f"sum by (target) (rate(pg_stat_database_tup_updated{{{TD}}}{W}))", "{{target}} updated"),
                q(f"sum by (target) (rate(pg_stat_database_tup_deleted{{{TD}}}{W}))", "{{target}} deleted"),
            ],
            unit="rowsps",
        ),
        Panel(
            "Database size",
            [q(f"pg_database_size_bytes{{{TD}}}", "{{target}} {{datname}}")],
            unit="bytes",
        ),
        Row("Locks and deadlocks"),
        Panel(
            "Locks by mode",
            [q(f"sum by (target, mode) (pg_locks_count{{{TD}}})", "{{target}} {{mode}}")],
            stack=True,
        ),
        Panel(
            "Lock waits",
            [q(f"sum by (target, datname) (pg_locks_waiting{{{TD}}})", "{{target}} {{datname}}")],
            description="Backends waiting for a lock.",
        ),
        Panel(
            "Deadlocks",
            [
                q(
                    f"sum by (target, datname) (increase(pg_stat_database_deadlocks{{{TD}}}{W}))",
                    "{{target}} {{datname}}",
                )
            ],
        ),
        Panel(
            "Exporter collectors failing",
            [
                q(
                    f"count by (target) (pg_scrape_collector_success{{{T}}} == 0) or "
                    f"count by (target) (pg_scrape_collector_success{{{T}}}) * 0",
                    "{{target}}",
                )
            ],
            description="Collectors whose last run failed or timed out (0 is healthy).",
        ),
    ),
)

QUERIES = Dashboard(
    "pgwarden-queries",
    "pgwarden / Queries (pg_stat_statements)",
    "The statements that cost the most, by total and by mean execution time. Labels: user, datname, queryid "
    "(the query text is exported only with collectors.statements.include_query).",
    (TARGET, DATNAME),
    (
        Row("Top statements"),
        Panel(
            "Top 10 by total time",
            [
                top(
                    f"topk(10, sum by (target, datname, user, queryid) (pg_stat_statements_seconds_total{{{TD}}}))",
                    "{{datname}} {{user}} {{queryid}}",
                )
            ],
            unit="s",
            kind="table",
        ),
        Panel(
            "Top 10 by mean time",
            [
                top(
                    f"topk(10, max by (target, datname, user, queryid) (pg_stat_statements_mean_seconds{{{TD}}}))",
                    "{{datname}} {{user}} {{queryid}}",
                )
            ],
            unit="s",
            kind="table",
        ),
        Row("Over time"),
        Panel(
            "Execution time per second, top 10",
            [
                q(
                    f"topk(10, sum by (target, datname, user, queryid) "
                    f"(rate(pg_stat_statements_seconds_total{{{TD}}}{W})))",
                    "{{datname}} {{user}} {{queryid}}",
                )
            ],
            unit="s",
            description="Seconds of execution per second: how many backends this statement keeps busy.",
        ),
        Panel(
            "Calls per second, top 10",
            [
                q(
                    f"topk(10, sum by (target, datname, user, queryid) "
                    f"(rate(pg_stat_statements_calls_total{{{TD}}}{W})))",
                    "{{datname}} {{user}} {{queryid}}",
                )
            ],
            unit="ops",
        ),
        Panel(
            "Max time, top 10",
            [
                q(
                    f"topk(10, max by (target, datname, user, queryid) (pg_stat_statements_max_seconds{{{TD}}}))",
                    "{{datname}} {{user}} {{queryid}}",
                )
            ],
            unit="s",
        ),
        Panel(
            "Rows per second, top 10",
            [
                q(
                    f"topk(10, sum by (target, datname, user, queryid) "
                    f"(rate(pg_stat_statements_rows_total{{{TD}}}{W})))",
                    "{{datname}} {{user}} {{queryid}}",
                )
            ],
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

TABLES = Dashboard(
    "pgwarden-tables",
    "pgwarden / Tables and indexes",
    "Bloat, dead tuples, vacuum age, unused indexes and sequential versus index scans, in every database.",
    (TARGET, DATNAME),
    (
        Row("Bloat and dead tuples"),
        Panel(
            "Estimated bloat, top 10",
            [top(f"topk(10, pg_table_bloat_bytes{{{TD}}})", "{{datname}}.{{schemaname}}.{{relname}}")],
            unit="bytes",
            kind="table",
        ),
        Panel(
            "Bloat ratio, top 10",
            [top(f"topk(10, pg_table_bloat_ratio{{{TD}}})", "{{datname}}.{{schemaname}}.{{relname}}")],
            unit="percentunit",
            kind="table",
        ),
        Panel(
            "Dead tuples, top 10",
            [
                q(
                    f"topk(10, pg_stat_user_tables_n_dead_tup{{{TD}}})",
                    "{{datname}}.{{schemaname}}.{{relname}}",
                )
            ],
        ),
        Panel(
            "Dead tuple ratio, top 10",
            [
                q(
                    # the recording rule PostgresDeadTuplesHigh is built on (alerts/postgres.rules.yml)
                    f"topk(10, pg:stat_user_tables_n_dead_tup:ratio{{{TD}}} >= 0)",
                    "{{datname}}.{{schemaname}}.{{relname}}",
                )
            ],
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
        Panel(
            "Transaction ID age by database",
            [q(f"pg_database_xid_age{{{TD}}}", "{{target}} {{datname}}")],
            description="Anti-wraparound autovacuum starts at autovacuum_freeze_max_age (200 million by default).",
        ),
        Panel(
            "Vacuums per minute",
            [
                q(
                    f"sum by (target, datname) (rate(pg_stat_user_tables_vacuum_count{{{TD}}}{W}) + "
                    f"rate(pg_stat_user_tables_autovacuum_count{{{TD}}}{W})) * 60",
                    "{{target}} {{datname}}",
                )
            ],
        ),
        Panel(
            "Modified rows since analyze, top 10",
            [
                q(
                    f"topk(10, pg_stat_user_tables_n_mod_since_analyze{{{TD}}})",
                    "{{datname}}.{{schemaname}}.{{relname}}",
                )
            ],
        ),
        Row("Indexes and scans"),
        Panel(
            "Unused indexes (never scanned, not unique) by size",
            [
                top(
                    f"pg_index_size_bytes{{{TD}}} and on (target, datname, schemaname, relname, indexrelname) "
                    f"(pg_index_unused{{{TD}}} == 1)",
                    "{{datname}}.{{schemaname}}.{{indexrelname}}",
                )
            ],
            unit="bytes",
            kind="table",
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
        Panel(
            "Share of sequential scans, top 10 tables",
            [
                top(
                    f"topk(10, pg_stat_user_tables_seq_scan{{{TD}}} / "
                    f"(pg_stat_user_tables_seq_scan{{{TD}}} + pg_stat_user_tables_idx_scan{{{TD}}} > 0))",
                    "{{datname}}.{{schemaname}}.{{relname}}",
                )
            ],
            unit="percentunit",
            kind="table",
        ),
        Panel(
            "Rows read by sequential scans, top 10",
            [
                q(
                    f"topk(10, rate(pg_stat_user_tables_seq_tup_read{{{TD}}}{W}))",
                    "{{datname}}.{{schemaname}}.{{relname}}",
                )
            ],
            unit="rowsps",
        ),
        Panel(
            "Largest tables",
            [
                top(
                    f"topk(10, pg_stat_user_tables_table_size_bytes{{{TD}}} + "
                    f"pg_stat_user_tables_index_size_bytes{{{TD}}})",
                    "{{datname}}.{{schemaname}}.{{relname}}",
                )
            ],
            unit="bytes",
            kind="table",
        ),
        Panel(
            "Cache hit ratio by table, lowest 10",
            [
                q(
                    f"bottomk(10, pg_statio_user_tables_heap_blks_hit{{{TD}}} / "
                    f"(pg_statio_user_tables_heap_blks_hit{{{TD}}} + pg_statio_user_tables_heap_blks_read{{{TD}}} > 0))",
                    "{{datname}}.{{schemaname}}.{{relname}}",
                )
            ],
            unit="percentunit",
        ),
    ),
)

RDS_DASHBOARD = Dashboard(
    "pgwarden-rds",
    "pgwarden / RDS",
    "RDS facts, CloudWatch metrics and backups, polled by the exporter in the background (labels "
    "aws_account_id, aws_region, dbidentifier).",
    (TARGET, DBIDENTIFIER),
    (
        Row("Instance"),
        Panel(
            "Status",
            [q(f"rds_instance_status{{{RDS}}}", "{{dbidentifier}}")],
            kind="stat",
            width=8,
            height=4,
            description="1 available; 2..14 busy; 0 stopped; negative: not serving (see the README's table).",
        ),
        Panel(
            "Instance class",
            [top(f"rds_instance_info{{{RDS}}}", "{{dbidentifier}} {{instance_class}} {{engine_version}}")],
            kind="table",
            width=16,
            height=4,
        ),
        Panel(
            "CPU", [q(f"rds_cpu_usage_percent_average{{{RDS}}}", "{{dbidentifier}}")], unit="percent", max=100
        ),
        Panel(
            "Connections and freeable memory",
            [
                q(f"rds_database_connections_average{{{RDS}}}", "{{dbidentifier}} connections"),
                q(f"rds_freeable_memory_bytes{{{RDS}}} / 2^20", "{{dbidentifier}} freeable MiB"),
            ],
        ),
        Row("Storage"),
        Panel(
            "Free storage",
            [
                q(f"rds_free_storage_bytes{{{RDS}}}", "{{dbidentifier}} free"),
                q(f"rds_allocated_storage_bytes{{{RDS}}}", "{{dbidentifier}} allocated"),
                q(f"rds_max_allocated_storage_bytes{{{RDS}}}", "{{dbidentifier}} autoscaling limit"),
            ],
            unit="bytes",
        ),
        Panel(
            "Free storage forecast (in 7 days, from the last 6 hours)",
            [
                q(
                    f"predict_linear(rds_free_storage_bytes{{{RDS}}}[6h], 7 * 86400)",
                    "{{dbidentifier}} in 7 days",
                ),
                q(f"rds_free_storage_bytes{{{RDS}}}", "{{dbidentifier}} now"),
            ],
            unit="bytes",
            description="A linear fit; below 0 means the volume fills within a week unless autoscaling grows it.",
        ),
        Panel(
            "Storage used",
            [
                q(
                    # the recording rule RDSFreeStorageLow is built on (alerts/rds.rules.yml)
                    f"1 - rds:free_storage_bytes:ratio{{{RDS}}}",
                    "{{dbidentifier}}",
                )
            ],
            unit="percentunit",
            max=1,
        ),
        Panel(
            "IOPS",
            [
                q(f"rds_read_iops_average{{{RDS}}}", "{{dbidentifier}} read"),
                q(f"rds_write_iops_average{{{RDS}}}", "{{dbidentifier}} write"),
            ],
            unit="iops",
        ),
        Panel(
            "Latency",
            [
                q(f"rds_read_latency_seconds{{{RDS}}}", "{{dbidentifier}} read"),
                q(f"rds_write_latency_seconds{{{RDS}}}", "{{dbidentifier}} write"),
            ],
            unit="s",
        ),
        Panel(
            "Disk queue depth and gp2 burst balance",
            [
                q(f"rds_disk_queue_depth{{{RDS}}}", "{{dbidentifier}} queue depth"),
                q(f"rds_burst_balance_percent{{{RDS}}}", "{{dbidentifier}} burst balance %"),
            ],
        ),
        Panel(
            "Replica lag",
            [q(f"rds_replica_lag_seconds{{{RDS}}}", "{{dbidentifier}}")],
            unit="s",
            description="CloudWatch ReplicaLag: read replicas only.",
        ),
        Row("Backups"),
        Panel(
            "Point-in-time recovery lag",
            [q(f"time() - rds_latest_restorable_time_seconds{{{RDS}}}", "{{dbidentifier}}")],
            unit="s",
            description="How far behind now the latest restorable time is.",
        ),
        Panel(
            "Latest snapshot age",
            [q(f"time() - rds_latest_snapshot_time_seconds{{{RDS}}}", "{{dbidentifier}} {{snapshot_type}}")],
            unit="s",
        ),
        Panel(
            "Cross-region copy age",
            [
                q(
                    f"time() - rds_latest_cross_region_snapshot_time_seconds{{{RDS}}}",
                    "{{dbidentifier}} in {{target_region}}",
                )
            ],
            unit="s",
            description="Age of the data in the newest copy in each backup region.",
        ),
        Panel(
            "Snapshots and retention",
            [
                q(f"rds_snapshots{{{RDS}}}", "{{dbidentifier}} {{snapshot_type}} snapshots"),
                q(f"rds_backup_retention_period_days{{{RDS}}}", "{{dbidentifier}} retention days"),
            ],
        ),
        Row("Polling"),
        Panel(
            "AWS data age",
            [q("pgwarden_aws_data_age_seconds", "{{instance}} {{source}}")],
            unit="s",
            description="Age of the oldest data each background source serves.",
        ),
        Panel(
            "AWS API calls and errors",
            [
                q(
                    f"sum by (api, operation) (rate(pgwarden_aws_api_calls_total{W}))",
                    "{{api}} {{operation}}",
                ),
                q(
                    f"sum by (api, code) (rate(pgwarden_aws_api_errors_total{W})) or vector(0)",
                    "errors {{code}}",
                ),
                q(
                    f"sum(rate(pgwarden_cloudwatch_metrics_requested_total{W})) * 3600",
                    "CloudWatch metrics requested per hour (billed)",
                ),
            ],
        ),
    ),
)

RESPONDER = Dashboard(
    "pgwarden-responder",
    "pgwarden / Responder",
    "Alertmanager webhooks, playbook decisions by outcome, backends terminated and approvals.",
    (INSTANCE, PLAYBOOK),
    (
        Row("Webhooks"),
        Panel(
            "Webhooks by HTTP status",
            [q(f"sum by (code) (increase(pgwarden_responder_webhooks_total{{{RI}}}{W}))", "{{code}}")],
            stack=True,
        ),
        Panel(
            "Alerts received by status",
            [q(f"sum by (status) (increase(pgwarden_responder_alerts_total{{{RI}}}{W}))", "{{status}}")],
            stack=True,
        ),
        Row("Actions"),
        Panel(
            "Actions by outcome",
            [
                q(
                    f"sum by (playbook, outcome) (increase(pgwarden_responder_actions_total{{{RIP}}}{W}))",
                    "{{playbook}} {{outcome}}",
                )
            ],
            stack=True,
        ),
        Panel(
            "Decisions since start, by outcome",
            [top(f"sum by (playbook, action, outcome) (pgwarden_responder_actions_total{{{RIP}}})")],
            kind="table",
        ),
        Panel(
            "Backends terminated and queries cancelled",
            [
                q(f"sum(increase(pgwarden_responder_backends_terminated_total{{{RI}}}{W}))", "terminated"),
                q(f"sum(increase(pgwarden_responder_backends_cancelled_total{{{RI}}}{W}))", "cancelled"),
            ],
        ),
        Panel(
            "Pending approvals now",
            [q(f"max(pgwarden_responder_actions_pending{{{RI}}})", "waiting for a human")],
            description="Actions waiting in the journal for POST /actions/{id}/approve or /reject (all replicas "
            "share the journal, hence max). GET /actions lists them.",
        ),
        Panel(
            "Approvals: requested, rejected, expired",
            [
                q(
                    f"sum by (playbook, outcome) "
                    f'(pgwarden_responder_actions_total{{{RIP}, outcome=~"pending|rejected|expired"}})',
                    "{{playbook}} {{outcome}}",
                )
            ],
            description="Counts since the responder started: `pending` counts approval requests.",
        ),
        Panel(
            "Action duration (p95)",
            [
                q(
                    "histogram_quantile(0.95, sum by (le, action) "
                    f"(rate(pgwarden_responder_action_duration_seconds_bucket{{{RI}}}{W})))",
                    "{{action}}",
                )
            ],
            unit="s",
        ),
        Panel(
            "Running actions and journal",
            [
                q(f"sum(pgwarden_responder_actions_running{{{RI}}})", "running"),
                q(f"min(pgwarden_responder_journal_up{{{RI}}})", "journal up"),
            ],
        ),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (OVERVIEW, QUERIES, TABLES, RDS_DASHBOARD, RESPONDER)

# ---- rendering --------------------------------------------------------------------------------------------


def _variable(var: Variable) -> dict[str, Any]:
    return {
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": DATASOURCE,
        "definition": var.query,
        "hide": 0,
        "includeAll": True,
        "label": var.label,
        "multi": True,
        "name": var.name,
        "options": [],
        "query": {"query": var.query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = []
    for n, query in enumerate(panel.queries):
        target: dict[str, Any] = {
            "datasource": DATASOURCE,
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "range": not query.instant,
            "instant": query.instant,
            "refId": chr(ord("A") + n),
        }
        if query.instant:
            target["format"] = "table"
        targets.append(target)
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.max is not None:
        defaults["min"], defaults["max"] = 0, panel.max
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "fillOpacity": 20 if panel.stack else 10,
            "lineWidth": 1,
            "showPoints": "never",
            "stacking": {"group": "A", "mode": "normal" if panel.stack else "none"},
        }
    options: dict[str, Any] = {}
    if panel.kind == "timeseries":
        options = {
            "legend": {"calcs": ["lastNotNull", "max"], "displayMode": "table", "placement": "bottom"},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind == "stat":
        options = {"colorMode": "value", "graphMode": "area", "reduceOptions": {"calcs": ["lastNotNull"]}}
    elif panel.kind == "table":
        options = {"showHeader": True, "sortBy": [{"desc": True, "displayName": "Value"}]}
    result: dict[str, Any] = {
        "datasource": DATASOURCE,
        "description": panel.description,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "id": panel_id,
        "options": options,
        "targets": targets,
        "title": panel.title,
        "type": panel.kind,
    }
    if panel.kind == "table":
        result["transformations"] = [
            {"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}}}
        ]
    return result


def build(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard's JSON model, laid out left to right in rows of 24 columns."""
    panels: list[dict[str, Any]] = []
    x = y = row_height = 0
    for panel_id, item in enumerate(dashboard.items, start=1):
        if isinstance(item, Row):
            y += row_height
            x = row_height = 0
            panels.append(
                {
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                    "id": panel_id,
                    "panels": [],
                    "title": item.title,
                    "type": "row",
                }
            )
            y += 1
            continue
        if x + item.width > 24:
            y += row_height
            x = row_height = 0
        panels.append(_panel(item, panel_id, x, y))
        x += item.width
        row_height = max(row_height, item.height)
    links = [
        {
            "asDropdown": True,
            "includeVars": True,
            "keepTime": True,
            "tags": list(TAGS),
            "title": "pgwarden",
            "type": "dashboards",
        }
    ]
    return {
        "annotations": {"list": []},
        "description": dashboard.description,
        "editable": True,
        "graphTooltip": 1,
        "links": links,
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": list(TAGS),
        "templating": {"list": [_variable(v) for v in dashboard.variables]},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": dashboard.title,
        "uid": dashboard.uid,
        "version": 1,
    }


def render(dashboard: Dashboard) -> str:
    return json.dumps(build(dashboard), indent=2, sort_keys=True) + "\n"


def outputs() -> dict[str, str]:
    """File name -> content of every dashboard."""
    return {f"{d.uid}.json": render(d) for d in DASHBOARDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when a committed file is out of date")
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR)
    args = parser.parse_args(argv)
    stale = []
    for name, content in outputs().items():
        path = args.output / name
        current = path.read_text() if path.exists() else None
        if current == content:
            continue
        if args.check:
            stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"wrote {path}")
    if stale:
        print(f"out of date (run python -m devtools.dashboards): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
