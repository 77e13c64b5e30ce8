"""The RDS dashboard: the instance, its lifecycle, storage and I/O, backups, restore drills and CloudWatch
metrics."""

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

DRILL = 'dbidentifier=~"$dbidentifier"'  # the responder's drill gauges carry no target


def by_instance(*series: tuple[str, str]) -> list[Query]:
    """A query a metric of the selected instances, each legend the instance's name and the metric's label."""
    return [q(f"{metric}{{{RDS}}}", f"{{{{dbidentifier}}}} {label}") for metric, label in series]


RDS_DASHBOARD = Dashboard(
    "pgwarden-rds",
    "pgwarden / RDS",
    "RDS facts, lifecycle, CloudWatch metrics and backups, polled by the exporter in the background (labels "
    "aws_account_id, aws_region, dbidentifier), and the responder's restore drills.",
    (TARGET, DBIDENTIFIER),
    (
        Row("Instance"),
        stat(
            "Status",
            f"rds_instance_status{{{RDS}}}",
            "{{dbidentifier}}",
            width=8,
            description="prometheus-rds-exporter's numbers: 1 available; 2..20 running but busy; 0 stopped; "
            "negative: not available (-1 a status without a number; see docs/aws.md's table).",
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
        Row("Lifecycle"),
        Panel(
            "Pending changes and maintenance",
            [
                top(f"rds_pending_modified_values{{{RDS}}}", "{{dbidentifier}} {{field}} → {{value}}"),
                top(f"rds_pending_maintenance{{{RDS}}}", "{{dbidentifier}} {{action}}: {{description}}"),
            ],
            kind="table",
            description="Changes waiting for the maintenance window or a reboot (PendingModifiedValues), and "
            "the maintenance actions AWS has scheduled.",
        ),
        Panel(
            "Lifecycle deadlines",
            [
                top(
                    f"rds_certificate_expiry_timestamp_seconds{{{RDS}}} - time()",
                    "{{dbidentifier}} CA certificate",
                ),
                top(
                    f"rds_pending_maintenance_forced_apply_after_seconds{{{RDS}}} - time()",
                    "{{dbidentifier}} {{action}} forced",
                ),
                top(
                    f"rds_pending_maintenance_auto_applied_after_seconds{{{RDS}}} - time()",
                    "{{dbidentifier}} {{action}} in the window",
                ),
                top(
                    f"rds_standard_support_engine_remaining_days{{{RDS}}} * 86400",
                    "{{dbidentifier}} standard support ends",
                ),
                top(
                    f"rds_extended_support_engine_remaining_days{{{RDS}}} * 86400",
                    "{{dbidentifier}} extended support ends",
                ),
            ],
            unit="s",
            kind="table",
            description="Time left until the server certificate expires, a pending action is applied and the "
            "engine's major version leaves RDS standard / extended support.",
        ),
        Panel(
            "Parameter groups and cross-region copies",
            [
                top(
                    f"rds_parameter_group_pending_reboot{{{RDS}}}",
                    "{{dbidentifier}} {{parameter_group}} pending reboot",
                ),
                top(
                    f"rds_expected_cross_region_copy{{{RDS}}} unless on (aws_account_id, aws_region, "
                    f"dbidentifier, target_region) rds_latest_cross_region_snapshot_time_seconds{{{RDS}}}"
                    f" or rds_expected_cross_region_copy{{{RDS}}} * 0",
                    "{{dbidentifier}} copy in {{target_region}} missing",
                ),
            ],
            kind="table",
            description="1: a parameter group change waits for a reboot; 1: no copy in a backup region the "
            "configuration expects one in.",
        ),
        graph(
            "RDS events",
            f"sum by (dbidentifier, event_category) (increase(rds_events_total{{{RDS}}}{W}))",
            "{{dbidentifier}} {{event_category}}",
            description="Instance events (DescribeEvents) by category: availability has reboots, failover "
            "failovers.",
        ),
        Row("Storage and I/O"),
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
                q(
                    f"predict_linear(rds_free_storage_bytes{{{RDS}}}[1h], 4 * 3600)",
                    "{{dbidentifier}} in 4 hours (RDSStorageFullForecast)",
                ),
                q(f"rds_free_storage_bytes{{{RDS}}}", "{{dbidentifier}} now"),
            ],
            unit="bytes",
            description="Linear fits; below 0 means the volume fills within a week (or 4 hours: the alert) "
            "unless autoscaling grows it.",
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
        Panel(
            "WAL and replication slot disk usage",
            [
                q(f"rds_transaction_logs_disk_usage_bytes{{{RDS}}}", "{{dbidentifier}} WAL"),
                q(f"rds_replication_slot_disk_usage_bytes{{{RDS}}}", "{{dbidentifier}} held by slots"),
            ],
            unit="bytes",
        ),
        Panel(
            "Throughput",
            [
                q(f"rds_read_throughput_bytes{{{RDS}}}", "{{dbidentifier}} read"),
                q(f"rds_write_throughput_bytes{{{RDS}}}", "{{dbidentifier}} write"),
            ],
            unit="Bps",
        ),
        Panel(
            "EBS burst balances",
            [
                q(f"rds_ebs_byte_balance_percent{{{RDS}}}", "{{dbidentifier}} throughput credits"),
                q(f"rds_ebs_io_balance_percent{{{RDS}}}", "{{dbidentifier}} I/O credits"),
            ],
            unit="percent",
            max=100,
        ),
        Panel(
            "Transaction IDs used and swap",
            [
                q(
                    f"rds_maximum_used_transaction_ids_average{{{RDS}}} / 2^31",
                    "{{dbidentifier}} transaction IDs used (of 2^31)",
                ),
                q(f"rds_swap_usage_bytes{{{RDS}}} / 2^30", "{{dbidentifier}} swap GiB"),
            ],
            description="MaximumUsedTransactionIDs as a part of the wraparound limit (RDSTransactionIDsHigh at "
            "1e9, about 0.47), and swap in use.",
        ),
        Panel(
            "Database load (Performance Insights)",
            [
                q(f"rds_dbload_average{{{RDS}}}", "{{dbidentifier}} all"),
                q(f"rds_dbload_cpu_average{{{RDS}}}", "{{dbidentifier}} on CPU"),
                q(f"rds_dbload_noncpu_average{{{RDS}}}", "{{dbidentifier}} waiting"),
            ],
            description="Average active sessions; only instances with Performance Insights publish DBLoad.",
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
            [
                *by_instance(("rds_snapshots", "{{snapshot_type}} snapshots")),
                q(f"rds_backup_retention_period_seconds{{{RDS}}} / 86400", "{{dbidentifier}} retention days"),
            ],
        ),
        Row("Restore drills"),
        stat(
            "Last successful drill",
            f"time() - max by (schedule, dbidentifier) "
            f"(pgwarden_drill_last_success_timestamp_seconds{{{DRILL}}} > 0)",
            "{{schedule}} {{dbidentifier}}",
            unit="s",
            width=8,
            description="Time since each schedule's last successful restore drill (none within 35 days: no "
            "value).",
        ),
        Panel(
            "Drill checks",
            [top("pgwarden_drill_check_success", "{{schedule}} {{check}}")],
            kind="table",
            width=8,
            height=4,
            description="1 when the check passed in the schedule's last drill that ran checks.",
        ),
        stat(
            "Drill instances",
            "pgwarden_drill_instances",
            "{{state}}",
            width=8,
            description="Drill instances the sweeper saw: running (a drill in progress) or leaked.",
        ),
        Panel(
            "Drill RTO and RPO",
            [
                q(
                    f"pgwarden_drill_restore_seconds{{{DRILL}}}",
                    "{{schedule}} {{dbidentifier}} RTO (restore)",
                ),
                q(
                    f"pgwarden_drill_recovery_point_age_seconds{{{DRILL}}}",
                    "{{schedule}} {{dbidentifier}} RPO (data age)",
                ),
            ],
            unit="s",
            width=24,
            description="Measured by the last drill: from the restore request until the instance was "
            "available, and how old the restored data was.",
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
