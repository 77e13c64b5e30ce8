"""CloudWatch AWS/RDS metrics through GetMetricData: up to 500 queries a call, the newest datapoint kept."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from exporter.aws.config import CloudWatchConfig
from exporter.aws.rds import Instance
from exporter.exposition import Family

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

MAX_QUERIES = 500  # GetMetricData's limit per call
NOT_POLLED = frozenset({"stopped", "deleting"})  # no datapoints to pay for
CACHED = " Polled from CloudWatch in the background and served from cache (a scrape makes no AWS call)."


@dataclass(frozen=True, slots=True)
class CloudWatchMetric:
    """One AWS/RDS metric: the family it becomes, its statistic, and which instances publish it."""

    name: str
    family: Family
    stat: str = "Average"
    applies: Callable[[Instance], bool] = lambda _: True


def _gauge(name: str, help_text: str) -> Family:
    return Family(name, "gauge", help_text + CACHED, ("aws_account_id", "aws_region", "dbidentifier"))


METRICS: dict[str, CloudWatchMetric] = {
    m.name: m
    for m in (
        CloudWatchMetric("FreeStorageSpace", _gauge("rds_free_storage_bytes", "Free storage space, bytes.")),
        CloudWatchMetric(
            "CPUUtilization", _gauge("rds_cpu_usage_percent_average", "CPU utilisation, percent.")
        ),
        CloudWatchMetric(
            "DatabaseConnections", _gauge("rds_database_connections_average", "Database connections in use.")
        ),
        CloudWatchMetric("FreeableMemory", _gauge("rds_freeable_memory_bytes", "Freeable memory, bytes.")),
        CloudWatchMetric(
            "ReplicaLag",
            _gauge("rds_replica_lag_seconds", "Read replica lag behind its source, seconds (replicas only)."),
            applies=lambda i: i.is_replica,
        ),
        CloudWatchMetric("ReadIOPS", _gauge("rds_read_iops_average", "Disk read operations per second.")),
        CloudWatchMetric("WriteIOPS", _gauge("rds_write_iops_average", "Disk write operations per second.")),
        CloudWatchMetric(
            "ReadLatency", _gauge("rds_read_latency_seconds", "Average disk read latency, seconds.")
        ),
        CloudWatchMetric(
            "WriteLatency", _gauge("rds_write_latency_seconds", "Average disk write latency, seconds.")
        ),
        CloudWatchMetric(
            "BurstBalance",
            _gauge("rds_burst_balance_percent", "gp2 burst bucket credits left, percent (gp2 storage only)."),
            applies=lambda i: i.storage_type == "gp2",
        ),
        CloudWatchMetric("DiskQueueDepth", _gauge("rds_disk_queue_depth", "Outstanding disk I/O requests.")),
    )
}

Datapoints = dict[
    tuple[tuple[str, str, str], str], tuple[float, float]
]  # (instance, metric) -> (value, time)


def window(now: float, config: CloudWatchConfig) -> tuple[datetime, datetime]:
    """[start, end) aligned to the period, ending `delay` ago and spanning `lookback` (whole periods)."""
    period = config.period
    end = math.floor((now - config.delay) / period) * period
    start = end - math.ceil(config.lookback / period) * period
    return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)


def queries_for(instances: Sequence[Instance], config: CloudWatchConfig) -> list[tuple[Instance, str]]:
    """(instance, metric) pairs to request: configured metrics the instance publishes, running ones only."""
    wanted = [METRICS[name] for name in config.metrics]
    return [(i, m.name) for i in instances if i.status not in NOT_POLLED for m in wanted if m.applies(i)]


def fetch(
    client: CloudWatchClient, pairs: Sequence[tuple[Instance, str]], config: CloudWatchConfig, now: float
) -> Datapoints:
    """The newest datapoint of every pair; a pair without one is left out (absent, never 0)."""
    start, end = window(now, config)
    found: Datapoints = {}
    for offset in range(0, len(pairs), MAX_QUERIES):
        batch = pairs[offset : offset + MAX_QUERIES]
        queries: list[Any] = [
            {
                "Id": f"q{n}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/RDS",
                        "MetricName": metric,
                        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": inst.identifier}],
                    },
                    "Period": int(config.period),
                    "Stat": METRICS[metric].stat,
                },
                "ReturnData": True,
            }
            for n, (inst, metric) in enumerate(batch)
        ]
        params: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampDescending",
        }
        while True:
            page = client.get_metric_data(**params)
            for result in page.get("MetricDataResults", []):
                inst, metric = batch[int(result["Id"][1:])]
                for ts, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                    key = (inst.key, metric)
                    when = ts.timestamp()
                    if key not in found or found[key][1] < when:
                        found[key] = (float(value), when)
            if not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]
    return found
