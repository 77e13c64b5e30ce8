"""RDS facts from DescribeDBInstances, and which instances to watch: configured targets plus discovery."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from exporter.aws.clients import DEFAULT_ACCOUNT
from exporter.aws.config import AWSConfig
from exporter.target import TargetConfig
from pgwarden.durations import format_duration as fmt

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient

Unit = tuple[str, str]  # (account key, region): one set of clients, one poll

# rds_instance_status as prometheus-rds-exporter numbers it (its README, "Supported RDS status"): 1 available,
# other positives a running instance busy with something, 0 stopped, negatives not available; any status it
# does not map (incompatible-*, configuring-log-exports, ...) is -1, the `status` label of rds_instance_info
# has the text.
STATUS_CODES: dict[str, int] = {
    "available": 1,
    "backing-up": 2,
    "starting": 3,
    "modifying": 4,
    "configuring-enhanced-monitoring": 5,
    "storage-initialization": 10,
    "storage-optimization": 11,
    "renaming": 20,
    "stopped": 0,
    "stopping": -2,
    "creating": -3,
    "deleting": -4,
    "rebooting": -5,
    "failed": -6,
    "storage-full": -7,
    "upgrading": -8,
    "maintenance": -9,
    "restore-error": -10,
}
UNKNOWN_STATUS = -1
GIB = 1024**3


@dataclass(frozen=True, slots=True)
class Instance:
    """What the exporter knows of one RDS instance after a DescribeDBInstances."""

    unit: Unit
    account_id: str
    region: str
    identifier: str
    dbi_resource_id: str
    instance_class: str
    engine: str
    engine_version: str
    storage_type: str
    multi_az: bool
    status: str
    is_replica: bool
    allocated_bytes: int | None
    max_allocated_bytes: int | None
    backup_retention_days: int | None
    latest_restorable_time: float | None
    tags: tuple[tuple[str, str], ...]
    targets: tuple[str, ...] = ()  # configured targets naming it; empty for a discovered instance
    backup_regions: tuple[str, ...] = ()
    arn: str = ""
    source_identifier: str = ""  # the source of a read replica (an ARN when it is in another region)
    ca_certificate_identifier: str = ""
    ca_valid_until: float | None = None
    endpoint: str = ""  # the instance's host name (Endpoint.Address): /probe's `discovered_rds` allowlist
    performance_insights: bool = False
    pending_values: tuple[tuple[str, str], ...] = ()  # PendingModifiedValues: (field, value) each
    parameter_groups: tuple[tuple[str, str], ...] = ()  # (name, ParameterApplyStatus) each
    deletion_protection: bool = False
    iops: int | None = None  # provisioned IOPS (gp3, io1, io2; RDS reports gp3's baseline too)
    storage_throughput_mibps: int | None = None  # provisioned storage throughput (gp3), MiB/s

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.account_id, self.region, self.identifier)

    @property
    def role(self) -> str:
        """`replica` for a read replica, else `primary` (prometheus-rds-exporter's `role` label)."""
        return "replica" if self.is_replica else "primary"

    @property
    def pending_modified(self) -> bool:
        """A change waits for a maintenance window or a reboot: PendingModifiedValues or a parameter group
        not in sync (prometheus-rds-exporter's `pending_modified_values` label)."""
        return bool(self.pending_values) or any(status != "in-sync" for _, status in self.parameter_groups)

    @property
    def status_code(self) -> int:
        return STATUS_CODES.get(self.status, UNKNOWN_STATUS)

    @property
    def major_version(self) -> str:
        """The engine's major version as RDS names it: PostgreSQL `15` from 15.4, `9.6` from 9.6.22."""
        parts = self.engine_version.split(".")
        if self.engine in ("postgres", "aurora-postgresql") and parts[0].isdigit() and int(parts[0]) >= 10:
            return parts[0]
        return ".".join(parts[:2])


@dataclass
class UnitPlan:
    """What one (account, region) is asked for: every instance (discovery) and/or named identifiers."""

    discover: bool = False
    identifiers: dict[str, list[str]] = field(default_factory=dict)  # identifier -> target names
    backup_regions: dict[str, tuple[str, ...]] = field(default_factory=dict)


def plan_units(aws: AWSConfig, targets: Sequence[TargetConfig]) -> dict[Unit, UnitPlan]:
    """The (account, region) pairs to describe, from `aws.discover`, `aws.accounts` and targets' `rds:`."""
    plans: dict[Unit, UnitPlan] = {}
    if aws.discover is not None:
        if aws.include_default_account:
            for region in aws.discover.regions:
                plans.setdefault((DEFAULT_ACCOUNT, region), UnitPlan()).discover = True
        for account in aws.accounts:
            for region in account.regions or aws.discover.regions:
                plans.setdefault((account.account_id, region), UnitPlan()).discover = True
    roles = {a.account_id for a in aws.accounts}
    for t in targets:
        if t.rds is None:
            continue
        key = t.rds.account_id if t.rds.account_id in roles else None
        plan = plans.setdefault((key or DEFAULT_ACCOUNT, t.rds.region), UnitPlan())
        plan.identifiers.setdefault(t.rds.identifier, []).append(t.name)
        known = plan.backup_regions.get(t.rds.identifier, ())
        plan.backup_regions[t.rds.identifier] = tuple(dict.fromkeys([*known, *t.rds.backup_regions]))
    return plans


def describe_unit(client: RDSClient, unit: Unit, plan: UnitPlan, aws: AWSConfig) -> list[Instance]:
    """One unit's instances: discovered ones (engine and tags match) and the configured identifiers."""
    filters: list[Any] = []
    if not plan.discover:
        filters = [{"Name": "db-instance-id", "Values": sorted(plan.identifiers)}]
    found: list[Instance] = []
    for raw in _paginate(client, filters):
        identifier = raw["DBInstanceIdentifier"]
        tags = {t["Key"]: t["Value"] for t in raw.get("TagList", []) if "Key" in t and "Value" in t}
        named = plan.identifiers.get(identifier, [])
        if not named and not (plan.discover and _discoverable(raw, tags, aws)):
            continue
        backups = plan.backup_regions.get(identifier)
        if backups is None and aws.discover is not None:
            backups = aws.discover.backup_regions
        found.append(_instance(unit, raw, tags, tuple(named), tuple(backups or ())))
    return found


def _paginate(client: RDSClient, filters: list[Any]) -> Iterable[Any]:
    params: dict[str, Any] = {"Filters": filters, "MaxRecords": 100}
    while True:
        page = client.describe_db_instances(**params)
        yield from page.get("DBInstances", [])
        if not page.get("Marker"):
            return
        params["Marker"] = page["Marker"]


def _discoverable(raw: Any, tags: dict[str, str], aws: AWSConfig) -> bool:
    assert aws.discover is not None
    if raw.get("Engine") not in aws.discover.engines:
        return False
    return all(tags.get(k) == v for k, v in aws.discover.tags.items())


def _instance(
    unit: Unit, raw: Any, tags: dict[str, str], targets: tuple[str, ...], backups: tuple[str, ...]
) -> Instance:
    arn = raw.get("DBInstanceArn", "")
    parts = arn.split(":")
    region = unit[1]
    allocated = raw.get("AllocatedStorage")
    max_allocated = raw.get("MaxAllocatedStorage")
    restorable = raw.get("LatestRestorableTime")
    certificate = raw.get("CertificateDetails") or {}
    return Instance(
        unit=unit,
        account_id=parts[4] if len(parts) > 5 else unit[0],
        region=region,
        identifier=raw["DBInstanceIdentifier"],
        dbi_resource_id=raw.get("DbiResourceId", ""),
        instance_class=raw.get("DBInstanceClass", ""),
        engine=raw.get("Engine", ""),
        engine_version=raw.get("EngineVersion", ""),
        storage_type=raw.get("StorageType", ""),
        multi_az=bool(raw.get("MultiAZ", False)),
        status=raw.get("DBInstanceStatus", ""),
        is_replica=bool(raw.get("ReadReplicaSourceDBInstanceIdentifier")),
        allocated_bytes=allocated * GIB if allocated is not None else None,
        max_allocated_bytes=max_allocated * GIB if max_allocated is not None else None,
        backup_retention_days=raw.get("BackupRetentionPeriod"),
        latest_restorable_time=_unix(restorable),
        tags=tuple(sorted(tags.items())),
        targets=targets,
        backup_regions=tuple(r for r in backups if r != region),
        arn=arn,
        source_identifier=raw.get("ReadReplicaSourceDBInstanceIdentifier", ""),
        ca_certificate_identifier=raw.get("CACertificateIdentifier", ""),
        ca_valid_until=_unix(certificate.get("ValidTill")),
        endpoint=str((raw.get("Endpoint") or {}).get("Address", "")).lower(),
        performance_insights=bool(raw.get("PerformanceInsightsEnabled", False)),
        pending_values=pending_values(raw.get("PendingModifiedValues") or {}),
        deletion_protection=bool(raw.get("DeletionProtection", False)),
        iops=raw.get("Iops"),
        storage_throughput_mibps=raw.get("StorageThroughput"),
        parameter_groups=tuple(
            sorted(
                (g.get("DBParameterGroupName", ""), g.get("ParameterApplyStatus", ""))
                for g in raw.get("DBParameterGroups", [])
            )
        ),
    )


def pending_values(pending: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Each pending change as (field, new value): scalars as text, lists and structures flattened
    (`PendingCloudwatchLogsExports.LogTypesToEnable` = `postgresql,upgrade`, `ProcessorFeatures` = `coreCount=4`).
    The master password's value is never kept."""
    found: list[tuple[str, str]] = []
    for key, value in pending.items():
        if key == "MasterUserPassword":
            found.append((key, "****"))
        elif isinstance(value, dict):
            for sub, inner in value.items():
                found.append((f"{key}.{sub}", _text(inner)))
        else:
            found.append((key, _text(value)))
    return tuple(sorted(found))


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(
            f"{v.get('Name')}={v.get('Value')}" if isinstance(v, dict) and "Name" in v else _text(v)
            for v in value
        )
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _unix(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def summary(aws: AWSConfig, targets: Sequence[TargetConfig]) -> list[str]:
    """--check-config lines: what will be polled, and how often."""
    plans = plan_units(aws, targets)
    units = ", ".join(
        f"{a or 'default'}/{r}" + (" (discover)" if p.discover else "") for (a, r), p in sorted(plans.items())
    )
    cw = aws.cloudwatch
    return [
        f"  aws: {len(plans)} account/region unit(s): {units or 'none'}",
        f"  aws: rds every {fmt(aws.rds.interval)}, snapshots every {fmt(aws.snapshots.interval)}, cloudwatch every "
        f"{fmt(cw.interval)} (period {fmt(cw.period)}, delay {fmt(cw.delay)}, {len(cw.metrics)} metrics), events "
        f"every {fmt(aws.events.interval)}, maintenance every {fmt(aws.maintenance.interval)}, instance types "
        f"every {fmt(aws.instance_types.interval)}, quotas every {fmt(aws.quotas.interval)}",
    ]
