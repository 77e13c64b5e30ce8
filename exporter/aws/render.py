"""AWS data as exposition fragments: rendered once per poll into an immutable view, never per scrape."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from exporter.aws.cloudwatch import METRICS, CloudWatchMetric, Datapoints
from exporter.aws.lifecycle import EventCounts, MaintenanceFacts, maintenance_mode
from exporter.aws.limits import (
    LIMIT_FAMILIES,
    InstanceClass,
    Quotas,
    render_account_wide,
    render_instance_limits,
)
from exporter.aws.rds import Instance, Unit
from exporter.aws.selfmetrics import SELF_FAMILIES
from exporter.aws.snapshots import SnapshotFacts
from exporter.exposition import Exposition, Family, Fragment
from exporter.scrape import target_label

ID_LABELS = ("aws_account_id", "aws_region", "dbidentifier")
DAY = 86400
FROM_RDS = (
    " From DescribeDBInstances, polled in the background and served from cache (a scrape makes no AWS call)."
)
FROM_SNAPSHOTS = (
    " From DescribeDBSnapshots, polled in the background and served from cache (a scrape makes no AWS call)."
)
FROM_CONFIG = " From the exporter's configuration (the target's or discover's backup_regions)."
FROM_MAINTENANCE = (
    " From DescribePendingMaintenanceActions, polled in the background and served from cache (a scrape makes no"
    " AWS call)."
)
FROM_ENGINES = (
    " From DescribeDBMajorEngineVersions, polled in the background and served from cache (a scrape makes no AWS"
    " call)."
)
FROM_EVENTS = (
    " From DescribeEvents (source type db-instance), polled in the background and served from cache (a scrape"
    " makes no AWS call)."
)


def _g(name: str, help_text: str, source: str, extra: tuple[str, ...] = ()) -> Family:
    return Family(name, "gauge", help_text + source, (*ID_LABELS, *extra))


# prometheus-rds-exporter's labels, and `status` (the text behind rds_instance_status).
INFO_LABELS = (
    "dbi_resource_id",
    "instance_class",
    "engine",
    "engine_version",
    "storage_type",
    "multi_az",
    "deletion_protection",
    "role",
    "source_dbidentifier",
    "pending_modified_values",
    "pending_maintenance",
    "performance_insights_enabled",
    "ca_certificate_identifier",
    "arn",
    "status",
)
INFO = _g(
    "rds_instance_info",
    "RDS instance facts as labels; always 1. pending_maintenance: no, pending, auto-applied, forced (the most"
    " pressing pending action), unknown until the maintenance poll worked.",
    FROM_RDS,
    INFO_LABELS,
)
ALLOCATED = _g("rds_allocated_storage_bytes", "Allocated storage, bytes.", FROM_RDS)
MAX_ALLOCATED = _g(
    "rds_max_allocated_storage_bytes", "Storage autoscaling ceiling, bytes (absent when off).", FROM_RDS
)
STATUS = _g(
    "rds_instance_status",
    "Instance status as prometheus-rds-exporter numbers it: 1 available, 2 backing-up, 3 starting, 4 modifying,"
    " 5 configuring-enhanced-monitoring, 10 storage-initialization, 11 storage-optimization, 20 renaming, 0"
    " stopped, -2 stopping, -3 creating, -4 deleting, -5 rebooting, -6 failed, -7 storage-full, -8 upgrading,"
    " -9 maintenance, -10 restore-error, -1 any other.",
    FROM_RDS,
)
RETENTION = _g(
    "rds_backup_retention_period_seconds", "Automated backup retention, seconds (0 = off).", FROM_RDS
)
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
PENDING_MODIFIED = _g(
    "rds_pending_modified_values",
    "1 for each change waiting for the next maintenance window or reboot (PendingModifiedValues): `field` is "
    "what changes (DBInstanceClass, AllocatedStorage, EngineVersion ...), `value` what it becomes.",
    FROM_RDS,
    ("field", "value"),
)
PARAMETER_GROUP_PENDING_REBOOT = _g(
    "rds_parameter_group_pending_reboot",
    "1 when a parameter group's change waits for a reboot (ParameterApplyStatus pending-reboot), else 0.",
    FROM_RDS,
    ("parameter_group",),
)
CA_VALID_UNTIL = _g(
    "rds_certificate_expiry_timestamp_seconds",
    "When the instance's server certificate (its CA, CertificateDetails.ValidTill) expires, Unix seconds.",
    FROM_RDS,
)
EXPECTED_COPY = _g(
    "rds_expected_cross_region_copy",
    "1 for each backup region the instance's snapshots are expected to be copied to.",
    FROM_CONFIG,
    ("target_region",),
)
MAINTENANCE_LABELS = ("action", "description")
PENDING_MAINTENANCE = _g(
    "rds_pending_maintenance", "1 for each pending maintenance action.", FROM_MAINTENANCE, MAINTENANCE_LABELS
)
AUTO_APPLIED_AFTER = _g(
    "rds_pending_maintenance_auto_applied_after_seconds",
    "When a pending action is applied in the next maintenance window, Unix seconds (absent when not set).",
    FROM_MAINTENANCE,
    MAINTENANCE_LABELS,
)
FORCED_APPLY_AFTER = _g(
    "rds_pending_maintenance_forced_apply_after_seconds",
    "When a pending action is applied whatever the maintenance window, Unix seconds (absent when not set).",
    FROM_MAINTENANCE,
    MAINTENANCE_LABELS,
)
SUPPORT_LABELS = ("engine", "engine_version")
STANDARD_SUPPORT_END = _g(
    "rds_standard_support_engine_remaining_days",
    "Days until the instance's major engine version leaves RDS standard support, rounded up (negative: it has"
    " left; absent: no date).",
    FROM_ENGINES,
    SUPPORT_LABELS,
)
EXTENDED_SUPPORT_END = _g(
    "rds_extended_support_engine_remaining_days",
    "Days until the instance's major engine version leaves RDS extended support, rounded up (negative: it has"
    " left; absent: no date).",
    FROM_ENGINES,
    SUPPORT_LABELS,
)
EVENTS = Family(
    "rds_events_total",
    "counter",
    "Instance events since the exporter started, by category (failover, availability for a reboot, low storage"
    " ...); every category starts at 0." + FROM_EVENTS,
    (*ID_LABELS, "event_category"),
)
AWS_FAMILIES = (
    INFO,
    ALLOCATED,
    MAX_ALLOCATED,
    STATUS,
    RETENTION,
    RESTORABLE,
    PENDING_MODIFIED,
    PARAMETER_GROUP_PENDING_REBOOT,
    CA_VALID_UNTIL,
    *(m.family for m in METRICS.values()),
    LATEST_SNAPSHOT,
    SNAPSHOTS,
    CROSS_REGION,
    EXPECTED_COPY,
    PENDING_MAINTENANCE,
    AUTO_APPLIED_AFTER,
    FORCED_APPLY_AFTER,
    STANDARD_SUPPORT_END,
    EXTENDED_SUPPORT_END,
    EVENTS,
    *LIMIT_FAMILIES,
    *SELF_FAMILIES,
)


@dataclass(frozen=True)
class Polled:
    """Everything the pollers hold, as one rendering reads it."""

    points: Datapoints = field(default_factory=dict)
    metrics: Sequence[CloudWatchMetric] = ()
    facts: Mapping[tuple[str, str, str], SnapshotFacts] = field(default_factory=dict)
    maintenance: Mapping[Unit, MaintenanceFacts] = field(default_factory=dict)
    events: Mapping[Unit, EventCounts] = field(default_factory=dict)
    classes: Mapping[Unit, Mapping[str, InstanceClass]] = field(default_factory=dict)
    quotas: Mapping[Unit, Quotas] = field(default_factory=dict)
    now: float = field(default_factory=time.time)  # what day counts (support dates) are counted from


def render_instance(out: Exposition, inst: Instance, polled: Polled) -> None:
    """Every series of one instance; what has no value is left out (absent, never 0)."""
    ids = (inst.account_id, inst.region, inst.identifier)
    plain = out.labels(ID_LABELS, ids)
    maintenance = polled.maintenance.get(inst.unit)
    pending = "unknown" if maintenance is None else maintenance_mode(maintenance.actions.get(inst.arn, []))
    info = {
        "dbi_resource_id": inst.dbi_resource_id,
        "instance_class": inst.instance_class,
        "engine": inst.engine,
        "engine_version": inst.engine_version,
        "storage_type": inst.storage_type,
        "multi_az": _bool(inst.multi_az),
        "deletion_protection": _bool(inst.deletion_protection),
        "role": inst.role,
        "source_dbidentifier": inst.source_identifier,
        "pending_modified_values": _bool(inst.pending_modified),
        "pending_maintenance": pending,
        "performance_insights_enabled": _bool(inst.performance_insights),
        "ca_certificate_identifier": inst.ca_certificate_identifier,
        "arn": inst.arn,
        "status": inst.status,
    }
    out.add(INFO, out.labels((*ID_LABELS, *INFO_LABELS), (*ids, *(info[k] for k in INFO_LABELS))), 1)
    out.add(ALLOCATED, plain, inst.allocated_bytes)
    out.add(MAX_ALLOCATED, plain, inst.max_allocated_bytes)
    out.add(STATUS, plain, inst.status_code)
    retention = inst.backup_retention_days
    out.add(RETENTION, plain, None if retention is None else retention * DAY)
    out.add(RESTORABLE, plain, inst.latest_restorable_time)
    for name, value in inst.pending_values:
        out.add(PENDING_MODIFIED, out.labels((*ID_LABELS, "field", "value"), (*ids, name, value)), 1)
    for group, apply_status in inst.parameter_groups:
        lbl = out.labels((*ID_LABELS, "parameter_group"), (*ids, group))
        out.add(PARAMETER_GROUP_PENDING_REBOOT, lbl, int(apply_status == "pending-reboot"))
    out.add(CA_VALID_UNTIL, plain, inst.ca_valid_until)
    render_instance_limits(out, inst, polled.classes.get(inst.unit, {}))
    for region in inst.backup_regions:
        out.add(EXPECTED_COPY, out.labels((*ID_LABELS, "target_region"), (*ids, region)), 1)
    for metric in polled.metrics:
        point = polled.points.get((inst.key, metric.name))
        if point is not None:
            out.add(metric.family, plain, point[0])
    _render_lifecycle(out, inst, ids, polled)
    facts = polled.facts.get(inst.key)
    if facts is None:
        return
    for kind in sorted(facts.latest):
        out.add(LATEST_SNAPSHOT, out.labels((*ID_LABELS, "snapshot_type"), (*ids, kind)), facts.latest[kind])
    for kind in sorted(facts.counts):
        out.add(SNAPSHOTS, out.labels((*ID_LABELS, "snapshot_type"), (*ids, kind)), facts.counts[kind])
    for region in sorted(facts.cross_region):
        lbl = out.labels((*ID_LABELS, "target_region"), (*ids, region))
        out.add(CROSS_REGION, lbl, facts.cross_region[region])


def _render_lifecycle(out: Exposition, inst: Instance, ids: tuple[str, str, str], polled: Polled) -> None:
    """Pending maintenance and engine support (once the unit's maintenance poll worked), event counts."""
    maintenance = polled.maintenance.get(inst.unit)
    if maintenance is not None:
        for action in maintenance.actions.get(inst.arn, []):
            lbl = out.labels((*ID_LABELS, *MAINTENANCE_LABELS), (*ids, action.action, action.description))
            out.add(PENDING_MAINTENANCE, lbl, 1)
            out.add(AUTO_APPLIED_AFTER, lbl, action.auto_applied_after)
            out.add(FORCED_APPLY_AFTER, lbl, action.forced_apply)
        support = maintenance.support.get((inst.engine, inst.major_version))
        if support is not None:
            lbl = out.labels((*ID_LABELS, *SUPPORT_LABELS), (*ids, inst.engine, inst.engine_version))
            out.add(STANDARD_SUPPORT_END, lbl, days_left(support.standard_end, polled.now))
            out.add(EXTENDED_SUPPORT_END, lbl, days_left(support.extended_end, polled.now))
    events = polled.events.get(inst.unit)
    if events is not None:
        for category, n in events.of(inst.identifier).items():
            out.add(EVENTS, out.labels((*ID_LABELS, "event_category"), (*ids, category)), n)


@dataclass(frozen=True)
class AWSView:
    """One immutable rendering of everything polled; a scrape only reads it."""

    instances: tuple[Instance, ...] = ()  # served here (this replica's shard)
    known: tuple[Instance, ...] = ()  # every instance found, for /discovery
    plain: Mapping[tuple[str, str, str], list[Fragment]] = field(default_factory=dict)
    labelled: Mapping[str, list[Fragment]] = field(default_factory=dict)  # target name -> with target label
    account_wide: tuple[Fragment, ...] = ()  # instance classes and quotas, once each (served on /metrics)

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
    instances: Sequence[Instance], polled: Polled, known: Sequence[Instance] | None = None
) -> AWSView:
    plain: dict[tuple[str, str, str], list[Fragment]] = {}
    labelled: dict[str, list[Fragment]] = {}
    for inst in instances:
        out = Exposition()
        render_instance(out, inst, polled)
        plain[inst.key] = out.fragments()
        for name in inst.targets:
            out = Exposition(target_label(name))
            render_instance(out, inst, polled)
            labelled.setdefault(name, []).extend(out.fragments())
    wide = render_account_wide(instances, polled.classes, polled.quotas).fragments()
    return AWSView(
        tuple(instances), tuple(instances if known is None else known), plain, labelled, tuple(wide)
    )


def days_left(when: float | None, now: float) -> int | None:
    """Whole days from `now` to `when`, rounded up as prometheus-rds-exporter does (None stays None)."""
    return None if when is None else math.ceil((when - now) / DAY)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def tag_label(key: str) -> str:
    """A tag key as a label name: `tag_` and the key with anything but [A-Za-z0-9_] as `_`."""
    return "tag_" + re.sub(r"[^A-Za-z0-9_]", "_", key)
