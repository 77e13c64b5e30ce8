"""Hard limits, as prometheus-rds-exporter exports them: what each instance class can do (EC2
DescribeInstanceTypes), what each instance's storage can do (its type, size and provisioned IOPS), and the
account's RDS quotas (Service Quotas)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from exporter.aws.rds import Instance
from exporter.exposition import Exposition, Family

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_service_quotas import ServiceQuotasClient

MIB = 1024**2
GIB = 1024**3
FROM_EC2 = " From EC2 DescribeInstanceTypes (the class without `db.`), polled in the background."
FROM_STORAGE = " From DescribeDBInstances: the storage type's rules applied to its size and provisioned IOPS."
FROM_QUOTAS = " From Service Quotas (service rds), polled in the background."
CLASS_LABELS = ("aws_account_id", "aws_region", "instance_class")
INSTANCE_LABELS = ("aws_account_id", "aws_region", "dbidentifier")
ACCOUNT_LABELS = ("aws_account_id", "aws_region")


def _family(name: str, help_text: str, labels: tuple[str, ...]) -> Family:
    return Family(name, "gauge", help_text, labels)


VCPU = _family("rds_instance_vcpu_average", "vCPUs of the instance class." + FROM_EC2, CLASS_LABELS)
MEMORY = _family("rds_instance_memory_bytes", "Memory of the instance class, bytes." + FROM_EC2, CLASS_LABELS)
CLASS_MAX_IOPS = _family(
    "rds_instance_max_iops_average", "EBS IOPS the instance class reaches in bursts." + FROM_EC2, CLASS_LABELS
)
CLASS_MAX_THROUGHPUT = _family(
    "rds_instance_max_throughput_bytes",
    "EBS throughput the instance class reaches in bursts, bytes per second." + FROM_EC2,
    CLASS_LABELS,
)
CLASS_BASELINE_IOPS = _family(
    "rds_instance_baseline_iops_average", "EBS IOPS the instance class sustains." + FROM_EC2, CLASS_LABELS
)
CLASS_BASELINE_THROUGHPUT = _family(
    "rds_instance_baseline_throughput_bytes",
    "EBS throughput the instance class sustains, bytes per second." + FROM_EC2,
    CLASS_LABELS,
)
ALLOCATED_IOPS = _family(
    "rds_allocated_disk_iops_average", "IOPS the storage provides." + FROM_STORAGE, INSTANCE_LABELS
)
ALLOCATED_THROUGHPUT = _family(
    "rds_allocated_disk_throughput_bytes",
    "Throughput the storage provides, bytes per second." + FROM_STORAGE,
    INSTANCE_LABELS,
)
MAX_IOPS = _family(
    "rds_max_disk_iops_average",
    "IOPS the instance can use: the storage's, capped by the class's sustained EBS IOPS." + FROM_STORAGE,
    INSTANCE_LABELS,
)
MAX_THROUGHPUT = _family(
    "rds_max_storage_throughput_bytes",
    "Storage throughput the instance can use, bytes per second: the storage's, capped by the class's sustained"
    " EBS throughput." + FROM_STORAGE,
    INSTANCE_LABELS,
)
QUOTA_INSTANCES = _family(
    "rds_quota_max_dbinstances_average",
    "DB instances the account may have (L-7B6409FD)." + FROM_QUOTAS,
    ACCOUNT_LABELS,
)
QUOTA_STORAGE = _family(
    "rds_quota_total_storage_bytes",
    "Storage all DB instances together may allocate, bytes (L-7ADDB58A)." + FROM_QUOTAS,
    ACCOUNT_LABELS,
)
QUOTA_SNAPSHOTS = _family(
    "rds_quota_maximum_db_instance_snapshots_average",
    "Manual DB instance snapshots the account may keep (L-272F1212)." + FROM_QUOTAS,
    ACCOUNT_LABELS,
)
CLASS_FAMILIES = (
    VCPU,
    MEMORY,
    CLASS_MAX_IOPS,
    CLASS_MAX_THROUGHPUT,
    CLASS_BASELINE_IOPS,
    CLASS_BASELINE_THROUGHPUT,
)
LIMIT_FAMILIES = (
    *CLASS_FAMILIES,
    ALLOCATED_IOPS,
    ALLOCATED_THROUGHPUT,
    MAX_IOPS,
    MAX_THROUGHPUT,
    QUOTA_INSTANCES,
    QUOTA_STORAGE,
    QUOTA_SNAPSHOTS,
)
QUOTA_CODES = (("L-7B6409FD", "instances"), ("L-7ADDB58A", "storage_gib"), ("L-272F1212", "manual_snapshots"))


@dataclass(frozen=True, slots=True)
class InstanceClass:
    """What EC2 says of the instance type behind an RDS class (None where it says nothing)."""

    vcpu: int | None
    memory_bytes: int | None
    max_iops: int | None
    max_throughput_bytes: float | None
    baseline_iops: int | None
    baseline_throughput_bytes: float | None

    def values(self) -> tuple[float | None, ...]:
        """In CLASS_FAMILIES' order."""
        return (
            self.vcpu,
            self.memory_bytes,
            self.max_iops,
            self.max_throughput_bytes,
            self.baseline_iops,
            self.baseline_throughput_bytes,
        )


@dataclass(frozen=True, slots=True)
class Quotas:
    """The account's RDS quotas in one region (None: Service Quotas has no value for it)."""

    instances: float | None = None
    storage_gib: float | None = None
    manual_snapshots: float | None = None


def describe_classes(client: EC2Client, classes: Iterable[str]) -> dict[str, InstanceClass]:
    """Each RDS class (`db.r6g.large`) EC2 knows as an instance type (`r6g.large`); the others (`db.serverless`)
    are left out. The `instance-type` filter, unlike InstanceTypes, does not fail on a type EC2 lacks."""
    wanted = sorted({c.removeprefix("db.") for c in classes if c.startswith("db.")})
    found: dict[str, InstanceClass] = {}
    for offset in range(0, len(wanted), 100):
        params: dict[str, Any] = {
            "Filters": [{"Name": "instance-type", "Values": wanted[offset : offset + 100]}]
        }
        while True:
            page = client.describe_instance_types(**params)
            for raw in page.get("InstanceTypes", []):
                found["db." + raw["InstanceType"]] = _instance_class(raw)
            if not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]
    return found


def _instance_class(raw: Any) -> InstanceClass:
    ebs = (raw.get("EbsInfo") or {}).get("EbsOptimizedInfo") or {}
    memory = (raw.get("MemoryInfo") or {}).get("SizeInMiB")
    max_mbps = ebs.get("MaximumThroughputInMBps")
    baseline_mbps = ebs.get("BaselineThroughputInMBps")
    return InstanceClass(
        vcpu=(raw.get("VCpuInfo") or {}).get("DefaultVCpus"),
        memory_bytes=None if memory is None else memory * MIB,
        max_iops=ebs.get("MaximumIops"),
        max_throughput_bytes=None if max_mbps is None else max_mbps * MIB,
        baseline_iops=ebs.get("BaselineIops"),
        baseline_throughput_bytes=None if baseline_mbps is None else baseline_mbps * MIB,
    )


def fetch_quotas(client: ServiceQuotasClient) -> Quotas:
    """GetServiceQuota of the three RDS quotas; one Service Quotas has no value for is None."""
    values: dict[str, float | None] = {}
    for code, name in QUOTA_CODES:
        try:
            quota = client.get_service_quota(ServiceCode="rds", QuotaCode=code)["Quota"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchResourceException":
                raise
            quota = {}
        values[name] = None if quota.get("ErrorReason") else quota.get("Value")
    return Quotas(**values)


def storage_limits(inst: Instance) -> tuple[int, int]:
    """(IOPS, throughput in bytes/s) the instance's storage provides, by prometheus-rds-exporter's reading of the
    EBS rules: gp2 scales with size, gp3 is what is provisioned, io1/io2 follow their provisioned IOPS."""
    size = (inst.allocated_bytes or 0) // GIB
    iops = inst.iops or 0
    mibps = inst.storage_throughput_mibps or 0
    if inst.storage_type == "gp2":
        iops = min(max(size * 3, 100), 16000)
        mibps = 250 if size >= 334 else 128
    elif inst.storage_type == "io1":
        if iops >= 64000:
            mibps = 1000
        elif iops >= 32000:
            mibps = iops * 16 // 1024
        elif iops >= 2000:
            mibps = 500
        else:
            mibps = iops * 256 // 1024
    elif inst.storage_type == "io2":
        mibps = min(max(int(iops * 0.256), 256), 4000)
    return iops, mibps * MIB


def render_instance_limits(out: Exposition, inst: Instance, classes: Mapping[str, InstanceClass]) -> None:
    """The storage's limits, and the instance's: capped by its class's sustained EBS limits once EC2 told them."""
    labels = out.labels(INSTANCE_LABELS, (inst.account_id, inst.region, inst.identifier))
    iops, throughput = storage_limits(inst)
    out.add(ALLOCATED_IOPS, labels, iops or None)
    out.add(ALLOCATED_THROUGHPUT, labels, throughput or None)
    known = classes.get(inst.instance_class)
    if known is not None:
        iops = min(iops, known.baseline_iops if known.baseline_iops is not None else iops)
        ceiling = known.baseline_throughput_bytes
        throughput = int(min(throughput, ceiling)) if ceiling is not None else throughput
    out.add(MAX_IOPS, labels, iops or None)
    out.add(MAX_THROUGHPUT, labels, throughput or None)


def render_account_wide(
    instances: Sequence[Instance],
    classes: Mapping[tuple[str, str], Mapping[str, InstanceClass]],
    quotas: Mapping[tuple[str, str], Quotas],
) -> Exposition:
    """Per (account, region): each instance class in use and the quotas; once each, whatever the instances."""
    out = Exposition()
    seen_units: set[tuple[str, str]] = set()
    seen_classes: set[tuple[str, str, str]] = set()
    for inst in instances:
        known = classes.get(inst.unit, {}).get(inst.instance_class)
        key = (inst.account_id, inst.region, inst.instance_class)
        if known is not None and key not in seen_classes:
            seen_classes.add(key)
            labels = out.labels(CLASS_LABELS, key)
            for family, value in zip(CLASS_FAMILIES, known.values(), strict=True):
                out.add(family, labels, value)
        account = (inst.account_id, inst.region)
        quota = quotas.get(inst.unit)
        if quota is not None and account not in seen_units:
            seen_units.add(account)
            labels = out.labels(ACCOUNT_LABELS, account)
            out.add(QUOTA_INSTANCES, labels, quota.instances)
            out.add(QUOTA_STORAGE, labels, None if quota.storage_gib is None else quota.storage_gib * GIB)
            out.add(QUOTA_SNAPSHOTS, labels, quota.manual_snapshots)
    return out
