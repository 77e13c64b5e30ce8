"""The `aws:` section: discovery, accounts, and each background source's interval (strict, like the rest)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from pgwarden.config import StrictModel
from pgwarden.durations import Duration

REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"
ROLE_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$"

# CloudWatch AWS/RDS metrics the exporter knows (name -> exported family, see exporter.aws.cloudwatch).
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
)


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


class CloudWatchConfig(SourceConfig):
    """GetMetricData every `interval` over `lookback` (aligned to `period`), ending `delay` ago."""

    interval: Duration = 60.0
    period: Duration = 60.0
    delay: Duration = 120.0
    lookback: Duration = 300.0
    metrics: tuple[str, ...] = DEFAULT_CLOUDWATCH_METRICS

    @field_validator("metrics")
    @classmethod
    def _known(cls, metrics: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in metrics if m not in DEFAULT_CLOUDWATCH_METRICS]
        if unknown:
            raise ValueError(
                f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(DEFAULT_CLOUDWATCH_METRICS)}"
            )
        if len(set(metrics)) != len(metrics):
            raise ValueError("list each metric once")
        return metrics

    @model_validator(mode="after")
    def _period(self) -> CloudWatchConfig:
        if self.period < 60 or self.period % 60:
            raise ValueError("period must be a multiple of 60s (RDS publishes one datapoint a minute)")
        if self.lookback < self.period:
            raise ValueError("lookback must be at least one period")
        return self


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
