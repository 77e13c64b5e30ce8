"""The RDS dashboard: the instance, its storage, backups and CloudWatch metrics."""

from __future__ import annotations

from devtools.dashboards.panels import (
    DBIDENTIFIER,
    RDS,
    TARGET,
    Dashboard,
    Panel,
    Query,
    Row,
    W,
    graph,
    q,
    stat,
    top,
)


def by_instance(*series: tuple[str, str]) -> list[Query]:
    """A query a metric of the selected instances, each legend the instance's name and the metric's label."""
    return [q(f"{metric}{{{RDS}}}", f"{{{{dbidentifier}}}} {label}") for metric, label in series]


RDS_DASHBOARD = Dashboard(
    "pgwarden-rds",
    "pgwarden / RDS",
    "RDS facts, CloudWatch metrics and backups, polled by the exporter in the background (labels "
    "aws_account_id, aws_region, dbidentifier).",
    (TARGET, DBIDENTIFIER),
    (
        Row("Instance"),
        stat(
            "Status",
            f"rds_instance_status{{{RDS}}}",
            "{{dbidentifier}}",
            width=8,
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
            by_instance(
                ("rds_free_storage_bytes", "free"),
                ("rds_allocated_storage_bytes", "allocated"),
                ("rds_max_allocated_storage_bytes", "autoscaling limit"),
            ),
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
            by_instance(
                ("rds_read_iops_average", "read"),
                ("rds_write_iops_average", "write"),
            ),
            unit="iops",
        ),
        Panel(
            "Latency",
            by_instance(
                ("rds_read_latency_seconds", "read"),
                ("rds_write_latency_seconds", "write"),
            ),
            unit="s",
        ),
        Panel(
            "Disk queue depth and gp2 burst balance",
            by_instance(
                ("rds_disk_queue_depth", "queue depth"),
                ("rds_burst_balance_percent", "burst balance %"),
            ),
        ),
        graph(
            "Replica lag",
            f"rds_replica_lag_seconds{{{RDS}}}",
            "{{dbidentifier}}",
            unit="s",
            description="CloudWatch ReplicaLag: read replicas only.",
        ),
        Row("Backups"),
        graph(
            "Point-in-time recovery lag",
            f"time() - rds_latest_restorable_time_seconds{{{RDS}}}",
            "{{dbidentifier}}",
            unit="s",
            description="How far behind now the latest restorable time is.",
        ),
        graph(
            "Latest snapshot age",
            f"time() - rds_latest_snapshot_time_seconds{{{RDS}}}",
            "{{dbidentifier}} {{snapshot_type}}",
            unit="s",
        ),
        graph(
            "Cross-region copy age",
            f"time() - rds_latest_cross_region_snapshot_time_seconds{{{RDS}}}",
            "{{dbidentifier}} in {{target_region}}",
            unit="s",
            description="Age of the data in the newest copy in each backup region.",
        ),
        Panel(
            "Snapshots and retention",
            by_instance(
                ("rds_snapshots", "{{snapshot_type}} snapshots"),
                ("rds_backup_retention_period_days", "retention days"),
            ),
        ),
        Row("Polling"),
        graph(
            "AWS data age",
            "pgwarden_aws_data_age_seconds",
            "{{instance}} {{source}}",
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
