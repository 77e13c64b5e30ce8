"""CloudWatch AWS/RDS metrics through GetMetricData: up to 500 queries a call, the newest datapoint kept.

GetMetricData bills per metric requested, not per datapoint, so the cadence (how often a metric is asked for)
is what costs; the resolution (`period`) and the window (`lookback`) are free. Each poll asks only for the
metrics that are due, over a window that covers the time since they were last asked for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from exporter.aws.config import CloudWatchConfig, MetricConfig
from exporter.aws.rds import Instance
from exporter.exposition import Family

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

MAX_QUERIES = 500  # GetMetricData's limit per call
NOT_POLLED = frozenset({"stopped", "deleting"})  # no datapoints to pay for
CACHED = " Polled from CloudWatch in the background and served from cache (a scrape makes no AWS call)."
SLOW = 900.0  # the default cadence of the metrics that change slowly or only explain a fast one


@dataclass(frozen=True, slots=True)
class CloudWatchMetric:
    """One AWS/RDS metric: the family it becomes, its statistic, resolution and cadence, who publishes it.

    `period` and `interval` of None mean the `cloudwatch:` section's; `resolve` fills them in."""

    name: str
    family: Family
    stat: str = "Average"
    applies: Callable[[Instance], bool] = lambda _: True
    interval: float | None = None
    period: float | None = None


def _gauge(name: str, help_text: str) -> Family:
    return Family(name, "gauge", help_text + CACHED, ("aws_account_id", "aws_region", "dbidentifier"))


def _with_insights(inst: Instance) -> bool:
    return inst.performance_insights


def _is_replica(inst: Instance) -> bool:
    return inst.is_replica


def _on_gp2(inst: Instance) -> bool:
    return inst.storage_type == "gp2"


def _all(_: Instance) -> bool:
    return True


FAST: float | None = None  # the `cloudwatch:` section's interval
# (CloudWatch name, family, help, cadence, who publishes it); names after prometheus-rds-exporter where it has them.
_TABLE: tuple[tuple[str, str, str, float | None, Callable[[Instance], bool]], ...] = (
    ("FreeStorageSpace", "rds_free_storage_bytes", "Free storage space, bytes.", FAST, _all),
    ("CPUUtilization", "rds_cpu_usage_percent_average", "CPU utilisation, percent.", FAST, _all),
    ("DatabaseConnections", "rds_database_connections_average", "Database connections in use.", FAST, _all),
    ("FreeableMemory", "rds_freeable_memory_bytes", "Freeable memory, bytes.", FAST, _all),
    ("ReplicaLag", "rds_replica_lag_seconds", "Read replica lag behind its source, seconds (replicas only).",
     FAST, _is_replica),
    ("TransactionLogsDiskUsage", "rds_transaction_logs_disk_usage_bytes", "Storage used by WAL files, bytes.",
     FAST, _all),
    ("ReplicationSlotDiskUsage", "rds_replication_slot_disk_usage_bytes",
     "Storage held by replication slots' WAL, bytes.", FAST, _all),
    ("ReadIOPS", "rds_read_iops_average", "Disk read operations per second.", SLOW, _all),
    ("WriteIOPS", "rds_write_iops_average", "Disk write operations per second.", SLOW, _all),
    ("ReadLatency", "rds_read_latency_seconds", "Average disk read latency, seconds.", SLOW, _all),
    ("WriteLatency", "rds_write_latency_seconds", "Average disk write latency, seconds.", SLOW, _all),
    ("BurstBalance", "rds_burst_balance_percent", "gp2 burst bucket credits left, percent (gp2 storage only).",
     SLOW, _on_gp2),
    ("DiskQueueDepth", "rds_disk_queue_depth", "Outstanding disk I/O requests.", SLOW, _all),
    ("MaximumUsedTransactionIDs", "rds_maximum_used_transaction_ids_average",
     "Age of the oldest unvacuumed transaction ID, transactions (wraparound at 2^31).", SLOW, _all),
    ("SwapUsage", "rds_swap_usage_bytes", "Swap space used, bytes.", SLOW, _all),
    ("ReadThroughput", "rds_read_throughput_bytes", "Disk read throughput, bytes per second.", SLOW, _all),
    ("WriteThroughput", "rds_write_throughput_bytes", "Disk write throughput, bytes per second.", SLOW, _all),
    ("EBSByteBalance%", "rds_ebs_byte_balance_percent", "EBS burst throughput credits left, percent.", SLOW, _all),
    ("EBSIOBalance%", "rds_ebs_io_balance_percent", "EBS burst I/O credits left, percent.", SLOW, _all),
    ("DBLoad", "rds_dbload_average", "Average active sessions (Performance Insights instances only).", SLOW,
     _with_insights),
    ("DBLoadCPU", "rds_dbload_cpu_average", "Average active sessions on CPU (Performance Insights only).", SLOW,
     _with_insights),
    ("DBLoadNonCPU", "rds_dbload_noncpu_average",
     "Average active sessions waiting, not on CPU (Performance Insights only).", SLOW, _with_insights),
)  # fmt: skip
METRICS: dict[str, CloudWatchMetric] = {
    name: CloudWatchMetric(name, _gauge(family, help_text), applies=applies, interval=interval)
    for name, family, help_text, interval, applies in _TABLE
}

Pair = tuple[Instance, CloudWatchMetric]
Key = tuple[tuple[str, str, str], str]  # (instance, metric name)
Datapoints = dict[Key, tuple[float, float]]  # -> (value, time)


def generated_name(metric: str, stat: str) -> str:
    """The family of a metric the table does not know: `rds_`, the name in snake case (`%` as `_percent`,
    anything else but letters and digits as `_`), `_`, the statistic in lower case: `BinLogDiskUsage`
    (Average) is `rds_bin_log_disk_usage_average`, `OldestReplicationSlotLag` (p99) `..._lag_p99`."""
    name = metric.replace("%", "_percent")
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    name = re.sub(r"[^A-Za-z0-9]+", "_", f"{name}_{stat}").lower()
    return "rds_" + re.sub(r"_+", "_", name).strip("_")


def resolve(config: CloudWatchConfig) -> tuple[CloudWatchMetric, ...]:
    """The configured metrics with their family, statistic, period and cadence filled in."""
    return tuple(_resolve_one(m, config) for m in config.metrics)


def _resolve_one(wanted: MetricConfig, config: CloudWatchConfig) -> CloudWatchMetric:
    known = METRICS.get(wanted.name)
    if known is None:
        stat = wanted.stat or "Average"
        help_text = f"CloudWatch AWS/RDS {wanted.name}, {stat} (not in the exporter's table: raw units)."
        known = CloudWatchMetric(wanted.name, _gauge(generated_name(wanted.name, stat), help_text), stat)
    interval = max(config.interval, wanted.interval or known.interval or config.interval)
    return replace(
        known,
        stat=wanted.stat or known.stat,
        interval=interval,
        period=wanted.period or known.period or config.period,
    )


def polled(instances: Sequence[Instance], metrics: Sequence[CloudWatchMetric]) -> list[Pair]:
    """Every pair worth asking for: running instances and the metrics they publish."""
    return [(i, m) for i in instances if i.status not in NOT_POLLED for m in metrics if m.applies(i)]


def due(
    instances: Sequence[Instance],
    metrics: Sequence[CloudWatchMetric],
    requested: Mapping[Key, float],
    now: float,
    poll_interval: float,
) -> list[Pair]:
    """The pairs to request now: those never asked for, or asked for about their interval ago (half a poll
    early rather than a whole poll late)."""
    pairs: list[Pair] = []
    for inst, m in polled(instances, metrics):
        last = requested.get((inst.key, m.name))
        if last is None or now - last >= (m.interval or poll_interval) - poll_interval / 2:
            pairs.append((inst, m))
    return pairs


def window(now: float, config: CloudWatchConfig, pairs: Sequence[Pair] = ()) -> tuple[datetime, datetime]:
    """[start, end) aligned to the period, ending `delay` ago and spanning the lookback in whole periods:
    `lookback`, else the longest interval among `pairs` plus one poll (so consecutive windows overlap)."""
    period = config.period
    lookback = config.lookback
    if lookback is None:
        lookback = max((m.interval or config.interval for _, m in pairs), default=config.interval)
        lookback += config.interval
    longest_period = max((m.period or period for _, m in pairs), default=period)
    end = math.floor((now - config.delay) / longest_period) * longest_period
    start = end - math.ceil(lookback / longest_period) * longest_period
    return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)


def fetch(
    client: CloudWatchClient, pairs: Sequence[Pair], config: CloudWatchConfig, now: float
) -> Datapoints:
    """The newest datapoint of every pair; a pair without one is left out (absent, never 0)."""
    start, end = window(now, config, pairs)
    found: Datapoints = {}
    for offset in range(0, len(pairs), MAX_QUERIES):
        batch = pairs[offset : offset + MAX_QUERIES]
        queries: list[Any] = [
            {
                "Id": f"q{n}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/RDS",
                        "MetricName": metric.name,
                        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": inst.identifier}],
                    },
                    "Period": int(metric.period or config.period),
                    "Stat": metric.stat,
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
                    key = (inst.key, metric.name)
                    when = ts.timestamp()
                    if key not in found or found[key][1] < when:
                        found[key] = (float(value), when)
            if not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]
    return found


def merge(
    previous: Datapoints, requested: Iterable[Pair], found: Datapoints, keep: Iterable[Key]
) -> Datapoints:
    """Last poll's datapoints updated with this one's: a requested pair takes what was found (or goes absent),
    one not due keeps its value; only the pairs in `keep` (still polled: a stopped instance is not) survive."""
    merged = {k: v for k, v in previous.items()}
    for inst, metric in requested:
        key = (inst.key, metric.name)
        if key in found:
            merged[key] = found[key]
        else:
            merged.pop(key, None)
    wanted = set(keep)
    return {k: v for k, v in merged.items() if k in wanted}
