"""The `aws:` section: discovery, accounts, and each background source's interval (strict, like the rest)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from pgwarden.config import StrictModel
from pgwarden.durations import Duration

REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"
ROLE_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$"

# CloudWatch AWS/RDS metrics requested when `aws.cloudwatch.metrics` is not set (exporter.aws.cloudwatch has the
# exported name, statistic and default cadence of each, and the rule for a name it does not know). The first 11
# were the defaults before the lifecycle metrics (bench/aws.py compares with them).
DEFAULT_CLOUDWATCH_METRICS = (
    "FreeStorageSpace",
    "CPUUtilization",
    "DatabaseConnections",
    "FreeableMemory",
    "ReplicaLag",
    "ReadIOPS",
    "WriteIOPS",
    "ReadLatency",
    "WriteLatency",
    "BurstBalance",
    "DiskQueueDepth",
    "MaximumUsedTransactionIDs",
    "TransactionLogsDiskUsage",
    "ReplicationSlotDiskUsage",
    "SwapUsage",
    "ReadThroughput",
    "WriteThroughput",
    "EBSByteBalance%",
    "EBSIOBalance%",
    "DBLoad",
    "DBLoadCPU",
    "DBLoadNonCPU",
)
METRIC_NAME = r"^[A-Za-z][A-Za-z0-9_%.-]{0,254}$"
STATISTICS = r"^(Average|Maximum|Minimum|Sum|SampleCount|p\d{1,2}(\.\d+)?)$"


class DiscoverConfig(StrictModel):
    """Find RDS instances by region and tags (every tag must match; no tags = every instance, untagged too)."""

    regions: tuple[str, ...] = Field(min_length=1)
    tags: dict[str, str] = {}
    engines: tuple[str, ...] = ("postgres",)
    backup_regions: tuple[str, ...] = ()  # where discovered instances' snapshots are copied to

    @field_validator("regions", "backup_regions")
    @classmethod
    def _regions(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        return check_regions(regions)


class AccountConfig(StrictModel):
    """Another account, reached by assuming `role_arn` (with the exporter's own credentials)."""

    role_arn: str = Field(pattern=ROLE_ARN)
    regions: tuple[str, ...] = ()  # empty: discover.regions
    external_id: str | None = None
    session_name: str = Field(default="pgwarden-exporter", min_length=2, max_length=64)

    @field_validator("regions")
    @classmethod
    def _regions(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        return check_regions(regions)

    @property
    def account_id(self) -> str:
        return self.role_arn.split(":")[4]


class SourceConfig(StrictModel):
    interval: Duration = 300.0

    @field_validator("interval")
    @classmethod
    def _at_least_a_second(cls, value: float) -> float:
        if value < 1:
            raise ValueError("the interval must be at least 1s")
        return value


class SnapshotsConfig(SourceConfig):
    interval: Duration = 900.0


class MaintenanceConfig(SourceConfig):
    """DescribePendingMaintenanceActions and the engine versions' support dates: they change by the day."""

    interval: Duration = 3600.0


class LimitsConfig(SourceConfig):
    """EC2 DescribeInstanceTypes of the classes in use, and the account's RDS quotas: they change by the day."""

    interval: Duration = 3600.0


class MetricConfig(StrictModel):
    """One CloudWatch metric; a bare name in `metrics` is this with its defaults."""

    name: str = Field(pattern=METRIC_NAME)
    interval: Duration | None = (
        None  # how often it is requested; default: the table's, else cloudwatch.interval
    )
    period: Duration | None = None  # the resolution of each datapoint; default: cloudwatch.period
    stat: str | None = Field(default=None, pattern=STATISTICS)  # default: the table's, else Average

    @model_validator(mode="after")
    def _durations(self) -> MetricConfig:
        if self.period is not None and (self.period < 60 or self.period % 60):
            raise ValueError("period must be a multiple of 60s (RDS publishes one datapoint a minute)")
        if self.interval is not None and self.interval < 1:
            raise ValueError("the interval must be at least 1s")
        return self


class CloudWatchConfig(SourceConfig):
    """GetMetricData every `interval` (the poll cadence); each datapoint covers `period` (the resolution).

    A poll asks only for the metrics that are due (a metric's own interval may be longer) over a window that
    ends `delay` ago, aligned to the period, and spans `lookback`, by default the longest due interval plus one
    poll: consecutive windows overlap, so no datapoint falls between two polls. The newest one is served.
    """

    interval: Duration = 300.0
    period: Duration = 60.0
    delay: Duration = 120.0
    lookback: Duration | None = None
    metrics: tuple[MetricConfig, ...] = tuple(MetricConfig(name=m) for m in DEFAULT_CLOUDWATCH_METRICS)

    @field_validator("metrics", mode="before")
    @classmethod
    def _names(cls, metrics: Any) -> Any:
        if isinstance(metrics, list | tuple):
            return [{"name": m} if isinstance(m, str) else m for m in metrics]
        return metrics

    @field_validator("metrics")
    @classmethod
    def _once(cls, metrics: tuple[MetricConfig, ...]) -> tuple[MetricConfig, ...]:
        names = [m.name for m in metrics]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"list each metric once: {', '.join(twice)} listed twice")
        return metrics

    @model_validator(mode="after")
    def _period(self) -> CloudWatchConfig:
        if self.period < 60 or self.period % 60:
            raise ValueError("period must be a multiple of 60s (RDS publishes one datapoint a minute)")
        if self.lookback is not None and self.lookback < self.interval:
            raise ValueError(
                "lookback must cover the interval (a shorter window never fetches the datapoints between polls)"
            )
        return self

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)


class RetriesConfig(StrictModel):
    """botocore's own retries inside one poll, then the poller's backoff (with jitter) between polls."""

    max_attempts: int = Field(default=3, ge=1, le=10)
    connect_timeout: Duration = 5.0
    read_timeout: Duration = 20.0
    backoff_max: Duration = 900.0


class ShardConfig(StrictModel):
    """This replica polls CloudWatch and snapshots only for the instances whose /probe target hashes
    (Prometheus' hashmod) to `index` modulo `total`."""

    index: int = Field(ge=0)
    total: int = Field(ge=1)

    @model_validator(mode="after")
    def _index_below_total(self) -> ShardConfig:
        if self.index >= self.total:
            raise ValueError("index must be below total (shards are numbered from 0)")
        return self


class AWSConfig(StrictModel):
    endpoint_url: str | None = None  # else AWS_ENDPOINT_URL, else AWS itself
    discover: DiscoverConfig | None = None
    accounts: tuple[AccountConfig, ...] = ()
    include_default_account: bool = True  # the exporter's own credentials' account
    rds: SourceConfig = SourceConfig()
    snapshots: SnapshotsConfig = SnapshotsConfig()
    events: SourceConfig = SourceConfig()  # DescribeEvents, every 300s
    maintenance: MaintenanceConfig = MaintenanceConfig()
    instance_types: LimitsConfig = LimitsConfig()  # the instance classes' vCPUs, memory, EBS limits (EC2)
    quotas: LimitsConfig = LimitsConfig()  # the account's RDS quotas (Service Quotas)
    cloudwatch: CloudWatchConfig = CloudWatchConfig()
    retries: RetriesConfig = RetriesConfig()
    shard: ShardConfig | None = None

    @model_validator(mode="after")
    def _accounts(self) -> AWSConfig:
        ids = [a.account_id for a in self.accounts]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"one role per account: {', '.join(dupes)} listed twice")
        for a in self.accounts:
            if not a.regions and self.discover is None:
                raise ValueError(
                    f"accounts: {a.account_id} lists no regions and there is no discover.regions"
                )
        return self


def check_regions(regions: tuple[str, ...]) -> tuple[str, ...]:
    bad = [r for r in regions if not re.match(REGION, r)]
    if bad:
        raise ValueError(f"not an AWS region: {', '.join(bad)}")
    return regions
