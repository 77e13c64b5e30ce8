"""AWS data as exposition fragments: rendered once per poll into an immutable view, never per scrape."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from exporter.aws.clients import ApiStats
from exporter.aws.cloudwatch import METRICS, Datapoints
from exporter.aws.rds import Instance
from exporter.aws.snapshots import SnapshotFacts
from exporter.exposition import Exposition, Family, Fragment
from exporter.scrape import target_label

ID_LABELS = ("aws_account_id", "aws_region", "dbidentifier")
FROM_RDS = (
    " From DescribeDBInstances, polled in the background and served from cache (a scrape makes no AWS call)."
)
FROM_SNAPSHOTS = (
    " From DescribeDBSnapshots, polled in the background and served from cache (a scrape makes no AWS call)."
)


def _g(name: str, help_text: str, source: str, extra: tuple[str, ...] = ()) -> Family:
    return Family(name, "gauge", help_text + source, (*ID_LABELS, *extra))


INFO_LABELS = ("instance_class", "engine", "engine_version", "storage_type", "multi_az", "status")
INFO = _g("rds_instance_info", "RDS instance facts as labels; always 1.", FROM_RDS, INFO_LABELS)
ALLOCATED = _g("rds_allocated_storage_bytes", "Allocated storage, bytes.", FROM_RDS)
MAX_ALLOCATED = _g(
    "rds_max_allocated_storage_bytes", "Storage autoscaling ceiling, bytes (absent when off).", FROM_RDS
)
STATUS = _g(
    "rds_instance_status",
    "Instance status as a number: 1 available, 2..14 running but busy (backing-up, modifying, ...), 0 stopped, "
    "negative not serving (-1 stopping, -2 deleting, -3 failed, -4 storage-full, ...), -100 unknown; see README.",
    FROM_RDS,
)
RETENTION = _g("rds_backup_retention_period_days", "Automated backup retention, days (0 = off).", FROM_RDS)
RESTORABLE = _g(
    "rds_latest_restorable_time_seconds",
    "Latest time point-in-time recovery can restore to, Unix seconds.",
    FROM_RDS,
)
LATEST_SNAPSHOT = _g(
    "rds_latest_snapshot_time_seconds",
    "Creation time of the newest available snapshot of each type, Unix seconds.",
    FROM_SNAPSHOTS,
    ("snapshot_type",),
)
SNAPSHOTS = _g("rds_snapshots", "Available snapshots of each type.", FROM_SNAPSHOTS, ("snapshot_type",))
CROSS_REGION = _g(
    "rds_latest_cross_region_snapshot_time_seconds",
    "Original creation time of the newest available copy of the instance's snapshots in each backup region, "
    "Unix seconds.",
    FROM_SNAPSHOTS,
    ("target_region",),
)
API_CALLS = Family(
    "pgwarden_aws_api_calls_total",
    "counter",
    "AWS API calls made by the background pollers.",
    ("api", "operation"),
)
METRICS_REQUESTED = Family(
    "pgwarden_cloudwatch_metrics_requested_total",
    "counter",
    "Metrics requested from CloudWatch GetMetricData, the unit AWS bills ($0.01 per 1,000).",
)
API_ERRORS = Family(
    "pgwarden_aws_api_errors_total", "counter", "Failed AWS API calls, by error code.", ("api", "code")
)
DATA_AGE = Family(
    "pgwarden_aws_data_age_seconds",
    "gauge",
    "Age of the oldest AWS data served for each source (rds, snapshots, cloudwatch): grows while polls fail.",
    ("source",),
)
AWS_FAMILIES = (
    INFO,
    ALLOCATED,
    MAX_ALLOCATED,
    STATUS,
    RETENTION,
    RESTORABLE,
    *(m.family for m in METRICS.values()),
    LATEST_SNAPSHOT,
    SNAPSHOTS,
    CROSS_REGION,
    API_CALLS,
    METRICS_REQUESTED,
    API_ERRORS,
    DATA_AGE,
)


def render_instance(
    out: Exposition, inst: Instance, points: Datapoints, facts: SnapshotFacts | None, metrics: Sequence[str]
) -> None:
    """Every series of one instance; what has no value is left out (absent, never 0)."""
    ids = (inst.account_id, inst.region, inst.identifier)
    plain = out.labels(ID_LABELS, ids)
    info = (
        inst.instance_class,
        inst.engine,
        inst.engine_version,
        inst.storage_type,
        inst.multi_az,
        inst.status,
    )
    out.add(INFO, out.labels((*ID_LABELS, *INFO_LABELS), (*ids, *(str(v).lower() for v in info))), 1)
    out.add(ALLOCATED, plain, inst.allocated_bytes)
    out.add(MAX_ALLOCATED, plain, inst.max_allocated_bytes)
    out.add(STATUS, plain, inst.status_code)
    out.add(RETENTION, plain, inst.backup_retention_days)
    out.add(RESTORABLE, plain, inst.latest_restorable_time)
    for name in metrics:
        point = points.get((inst.key, name))
        if point is not None:
            out.add(METRICS[name].family, plain, point[0])
    if facts is None:
        return
    for kind in sorted(facts.latest):
        out.add(LATEST_SNAPSHOT, out.labels((*ID_LABELS, "snapshot_type"), (*ids, kind)), facts.latest[kind])
    for kind in sorted(facts.counts):
        out.add(SNAPSHOTS, out.labels((*ID_LABELS, "snapshot_type"), (*ids, kind)), facts.counts[kind])
    for region in sorted(facts.cross_region):
        lbl = out.labels((*ID_LABELS, "target_region"), (*ids, region))
        out.add(CROSS_REGION, lbl, facts.cross_region[region])


@dataclass(frozen=True)
class AWSView:
    """One immutable rendering of everything polled; a scrape only reads it."""

    instances: tuple[Instance, ...] = ()  # served here (this replica's shard)
    known: tuple[Instance, ...] = ()  # every instance found, for /discovery
    plain: Mapping[tuple[str, str, str], list[Fragment]] = field(default_factory=dict)
    labelled: Mapping[str, list[Fragment]] = field(default_factory=dict)  # target name -> with target label

    def for_target(self, name: str, labelled: bool) -> list[Fragment]:
        """The RDS series of the instance(s) a configured target names."""
        if labelled:
            return self.labelled.get(name, [])
        return [f for i in self.instances if name in i.targets for f in self.plain[i.key]]

    def discovered(self) -> list[Fragment]:
        """Series of instances no configured target names (they carry no target label)."""
        return [f for i in self.instances if not i.targets for f in self.plain[i.key]]

    def find(self, ref: str) -> list[Instance]:
        """Instances a /probe target names: `dbidentifier` or `account/region/dbidentifier`."""
        return [i for i in self.instances if ref in (i.identifier, "/".join(i.key))]


def build_view(
    instances: Sequence[Instance],
    points: Datapoints,
    facts: Mapping[tuple[str, str, str], SnapshotFacts],
    metrics: Sequence[str],
    known: Sequence[Instance] | None = None,
) -> AWSView:
    plain: dict[tuple[str, str, str], list[Fragment]] = {}
    labelled: dict[str, list[Fragment]] = {}
    for inst in instances:
        out = Exposition()
        render_instance(out, inst, points, facts.get(inst.key), metrics)
        plain[inst.key] = out.fragments()
        for name in inst.targets:
            out = Exposition(target_label(name))
            render_instance(out, inst, points, facts.get(inst.key), metrics)
            labelled.setdefault(name, []).extend(out.fragments())
    return AWSView(tuple(instances), tuple(instances if known is None else known), plain, labelled)


def render_self(stats: ApiStats, ages: Mapping[str, float]) -> list[Fragment]:
    """The pollers' own metrics, rendered per scrape from in-memory counters (no AWS call)."""
    calls, errors, requested = stats.snapshot()
    out = Exposition()
    for (api, op), n in sorted(calls.items()):
        out.add(API_CALLS, out.labels(("api", "operation"), (api, op)), n)
    out.add(METRICS_REQUESTED, "", requested)
    for (api, code), n in sorted(errors.items()):
        out.add(API_ERRORS, out.labels(("api", "code"), (api, code)), n)
    for source, age in ages.items():
        out.add(DATA_AGE, out.labels(("source",), (source,)), round(age, 3))
    return out.fragments()


def tag_label(key: str) -> str:
    """A tag key as a label name: `tag_` and the key with anything but [A-Za-z0-9_] as `_`."""
    return "tag_" + re.sub(r"[^A-Za-z0-9_]", "_", key)
