"""Hard limits as prometheus-rds-exporter exports them: the instance classes from EC2 DescribeInstanceTypes (on
the moto server), each instance's storage limits, and the account's RDS quotas.

moto's Service Quotas knows only the `vpc` service, so the quotas' values are tested against botocore's
Stubber (its responses checked against botocore's own service-quotas model); on moto the quota source polls
without error and the quota series stay absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from devtools.motoserver import MotoServer
from exporter.aws.limits import storage_limits
from exporter.aws.poller import AWSPoller
from exporter.aws.rds import Instance
from exporter.config import parse_config
from exporter.exposition import join_fragments
from tests.exporter.aws import support
from tests.exporter.aws.stubbing import ACCOUNT, discovering_poller, fails_alone, offline
from tests.exporter.aws.support import DOWN_DSN, REGION, aws_config, create_postgres, rds
from tests.support.exporter import Samples

moto, moto_session = support.moto, support.moto_session  # fixtures
MIB = 1024**2
GIB = 1024**3


def ids(identifier: str) -> dict[str, str]:
    return {"aws_account_id": ACCOUNT, "aws_region": REGION, "dbidentifier": identifier}


def samples(poller: AWSPoller) -> Samples:
    return Samples(join_fragments([poller.view.discovered(), poller.self_metrics()]).decode())


def ec2_type(name: str) -> dict[str, Any]:
    """What the moto server's EC2 says of an instance type (the expected values)."""
    found: dict[str, Any] = boto3.client("ec2", region_name=REGION).describe_instance_types(
        InstanceTypes=[name]
    )
    return found["InstanceTypes"][0]  # type: ignore[no-any-return]


async def test_instance_classes_and_storage_limits_on_moto(moto: MotoServer) -> None:
    east = rds()
    tags = [{"Key": "team", "Value": "db"}]
    create_postgres(east, "small", Tags=tags)  # db.t3.medium, 100 GiB gp2
    create_postgres(east, "small-too", Tags=tags)  # the same class: its series once
    create_postgres(
        east,
        "big",
        DBInstanceClass="db.r6g.xlarge",
        StorageType="gp3",
        AllocatedStorage=400,
        Iops=12000,
        StorageThroughput=500,
        Tags=tags,
    )
    config = parse_config({"targets": [{"name": "pg", "dsn": DOWN_DSN}], "aws": aws_config()})
    assert config.aws is not None
    poller = AWSPoller(config.aws, config.targets)
    for source in ("rds", "instance_types", "quotas"):
        assert await poller.poll(source), source
    s = samples(poller)
    for rds_class, ec2_class in (("db.t3.medium", "t3.medium"), ("db.r6g.xlarge", "r6g.xlarge")):
        raw = ec2_type(ec2_class)
        ebs = raw["EbsInfo"]["EbsOptimizedInfo"]
        labels = {"aws_account_id": ACCOUNT, "aws_region": REGION, "instance_class": rds_class}
        assert s.all("rds_instance_vcpu_average", **labels) == [(labels, raw["VCpuInfo"]["DefaultVCpus"])]
        assert s.get("rds_instance_memory_bytes", **labels) == raw["MemoryInfo"]["SizeInMiB"] * MIB
        assert s.get("rds_instance_max_iops_average", **labels) == ebs["MaximumIops"]
        assert s.get("rds_instance_max_throughput_bytes", **labels) == ebs["MaximumThroughputInMBps"] * MIB
        assert s.get("rds_instance_baseline_iops_average", **labels) == ebs["BaselineIops"]
        assert (
            s.get("rds_instance_baseline_throughput_bytes", **labels) == ebs["BaselineThroughputInMBps"] * MIB
        )
    t3 = ec2_type("t3.medium")["EbsInfo"]["EbsOptimizedInfo"]
    # gp2 of 100 GiB: 300 IOPS (3 per GiB), 128 MiB/s; t3.medium sustains 2000 IOPS but only 43.375 MB/s
    assert s.get("rds_allocated_disk_iops_average", **ids("small")) == 300
    assert s.get("rds_allocated_disk_throughput_bytes", **ids("small")) == 128 * MIB
    assert s.get("rds_max_disk_iops_average", **ids("small")) == min(300, t3["BaselineIops"]) == 300
    assert s.get("rds_max_storage_throughput_bytes", **ids("small")) == int(
        t3["BaselineThroughputInMBps"] * MIB
    )
    r6g = ec2_type("r6g.xlarge")["EbsInfo"]["EbsOptimizedInfo"]
    # gp3 as provisioned (12000 IOPS, 500 MiB/s), capped by what r6g.xlarge sustains
    assert s.get("rds_allocated_disk_iops_average", **ids("big")) == 12000
    assert s.get("rds_max_disk_iops_average", **ids("big")) == min(12000, r6g["BaselineIops"])
    assert s.get("rds_max_storage_throughput_bytes", **ids("big")) == int(
        min(500 * MIB, r6g["BaselineThroughputInMBps"] * MIB)
    )
    # moto has no RDS quotas: the poll works, the series are absent (never 0)
    assert s.all("rds_quota_max_dbinstances_average") == []


async def test_an_instance_class_ec2_does_not_know_is_left_out(moto: MotoServer) -> None:
    """RDS classes without an EC2 type (db.serverless) must not fail the others' poll."""
    east = rds()
    create_postgres(east, "known", Tags=[{"Key": "team", "Value": "db"}])
    config = parse_config({"targets": [{"name": "pg", "dsn": DOWN_DSN}], "aws": aws_config()})
    assert config.aws is not None
    poller = AWSPoller(config.aws, config.targets)
    assert await poller.poll("rds")
    unit = ("", REGION)
    poller.instances[unit] = [
        *poller.instances[unit],
        replace(poller.instances[unit][0], identifier="aurora", instance_class="db.serverless"),
    ]
    assert await poller.poll("instance_types")
    assert sorted(poller.classes[unit]) == ["db.t3.medium"]


QUOTAS = {
    "L-7B6409FD": ("DB instances", 40.0),
    "L-7ADDB58A": ("Total storage for all DB instances", 100000.0),
}


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[AWSPoller, Stubber]]:
    """A poller whose RDS and Service Quotas clients answer from Stubbers (no network)."""
    offline(monkeypatch, tmp_path)
    poller = discovering_poller(REGION)
    rds_stub = Stubber(poller.clients.rds("", REGION))
    instance = {
        "DBInstanceIdentifier": "prod",
        "DBInstanceArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:db:prod",
        "DBInstanceClass": "db.m6g.large",
        "Engine": "postgres",
        "EngineVersion": "16.3",
        "DBInstanceStatus": "available",
        "StorageType": "io1",
        "AllocatedStorage": 500,
        "Iops": 40000,
    }
    rds_stub.add_response(
        "describe_db_instances", {"DBInstances": [instance]}, {"Filters": [], "MaxRecords": 100}
    )
    quotas = Stubber(poller.clients.service_quotas("", REGION))
    with rds_stub, quotas:
        yield poller, quotas
    quotas.assert_no_pending_responses()


def quota(code: str, name: str, value: float, **extra: Any) -> dict[str, Any]:
    """A GetServiceQuota answer as Service Quotas gives it for RDS."""
    body = {
        "ServiceCode": "rds",
        "ServiceName": "Amazon Relational Database Service (Amazon RDS)",
        "QuotaArn": f"arn:aws:servicequotas:{REGION}:{ACCOUNT}:rds/{code}",
        "QuotaCode": code,
        "QuotaName": name,
        "Value": value,
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
    }
    return {"Quota": {**body, **extra}}


async def test_quotas_from_service_quotas(stubbed: tuple[AWSPoller, Stubber]) -> None:
    """Stubber: DB instances 40, total storage 100,000 GiB, and a snapshot quota Service Quotas cannot read."""
    poller, quotas = stubbed
    for code, (name, value) in QUOTAS.items():
        quotas.add_response(
            "get_service_quota", quota(code, name, value), {"ServiceCode": "rds", "QuotaCode": code}
        )
    unreadable = quota(
        "L-272F1212",
        "Manual DB instance snapshots",
        0.0,
        ErrorReason={"ErrorCode": "DEPENDENCY_ACCESS_DENIED_ERROR", "ErrorMessage": "no access"},
    )
    quotas.add_response("get_service_quota", unreadable, {"ServiceCode": "rds", "QuotaCode": "L-272F1212"})
    assert await poller.poll("rds")
    assert await poller.poll("quotas")
    s = samples(poller)
    account = {"aws_account_id": ACCOUNT, "aws_region": REGION}
    assert s.all("rds_quota_max_dbinstances_average") == [(account, 40.0)]
    assert s.get("rds_quota_total_storage_bytes", **account) == 100000 * GIB
    assert s.all("rds_quota_maximum_db_instance_snapshots_average") == []  # an error is no value
    # io1 at 40,000 IOPS: 16 KiB per IOPS, 625 MiB/s; no EC2 data yet, so the instance's limit is the storage's
    assert s.get("rds_max_disk_iops_average", **ids("prod")) == 40000
    assert s.get("rds_max_storage_throughput_bytes", **ids("prod")) == 625 * MIB


async def test_quota_access_denied_fails_that_source_only(stubbed: tuple[AWSPoller, Stubber]) -> None:
    poller, quotas = stubbed
    quotas.add_client_error("get_service_quota", "AccessDeniedException", http_status_code=400)
    await fails_alone(poller, "quotas")
    s = samples(poller)
    assert s.get("rds_instance_status", **ids("prod")) == 1
    assert s.get("rds_exporter_errors_total") == 1
    assert s.get("pgwarden_aws_api_errors_total", api="service-quotas", code="AccessDeniedException") == 1


def storage(
    storage_type: str, gib: int, iops: int | None = None, mibps: int | None = None
) -> tuple[int, int]:
    inst = Instance(
        unit=("", REGION),
        account_id=ACCOUNT,
        region=REGION,
        identifier="x",
        dbi_resource_id="",
        instance_class="db.m6g.large",
        engine="postgres",
        engine_version="16.3",
        storage_type=storage_type,
        multi_az=False,
        status="available",
        is_replica=False,
        allocated_bytes=gib * GIB,
        max_allocated_bytes=None,
        backup_retention_days=7,
        latest_restorable_time=None,
        tags=(),
        iops=iops,
        storage_throughput_mibps=mibps,
    )
    iops_out, throughput = storage_limits(inst)
    return iops_out, throughput // MIB


def test_storage_limits_follow_the_ebs_rules() -> None:
    assert storage("gp2", 20) == (100, 128)  # the floor
    assert storage("gp2", 1000) == (3000, 250)  # 3 IOPS per GiB; 334 GiB and more: 250 MiB/s
    assert storage("gp2", 6000) == (16000, 250)  # the ceiling
    assert storage("gp3", 400, 12000, 500) == (12000, 500)  # as provisioned
    assert storage("io1", 100, 1000) == (1000, 250)  # 256 KiB per IOPS
    assert storage("io1", 100, 10000) == (10000, 500)
    assert storage("io1", 100, 40000) == (40000, 625)  # 16 KiB per IOPS
    assert storage("io1", 100, 64000) == (64000, 1000)
    assert storage("io2", 100, 1000) == (1000, 256)  # 0.256 MiB/s per IOPS, at least 256
    assert storage("io2", 100, 100000) == (100000, 4000)  # at most 4,000
    assert storage("standard", 100) == (0, 0)  # magnetic: nothing known, the series are absent
