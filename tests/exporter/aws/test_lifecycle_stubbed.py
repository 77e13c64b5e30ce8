"""What moto lacks, against recorded AWS responses through botocore's Stubber: pending modifications, pending
maintenance, engine support dates, certificate expiry, reboot and failover events.

The Stubber checks every response (and the expected request parameters) against botocore's own RDS service
model, so a field misspelt here fails the test rather than passing silently. The real pollers run: their
clients come from the exporter's ClientFactory, only the transport is replaced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from exporter.aws import lifecycle
from exporter.aws.poller import AWSPoller
from exporter.config import parse_config
from exporter.exposition import join_fragments
from tests.exporter.aws.stubbing import ACCOUNT, fails_alone, offline, rds_instance
from tests.support.exporter import Samples

REGION = "eu-central-1"
NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
PROD_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:prod"
REPLICA_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:prod-replica"


def ids(identifier: str) -> dict[str, str]:
    return {"aws_account_id": ACCOUNT, "aws_region": REGION, "dbidentifier": identifier}


def instance(identifier: str, **extra: Any) -> dict[str, Any]:
    """A DescribeDBInstances entry as RDS returns it for PostgreSQL 13.15 (the fields the exporter reads)."""
    extra = {
        "StorageType": "gp3",
        "MultiAZ": True,
        "DBParameterGroups": [{"DBParameterGroupName": "prod-pg13", "ParameterApplyStatus": "in-sync"}],
        "PendingModifiedValues": {},
        **extra,
    }
    return rds_instance(identifier, REGION, "13.15", "db.m6g.large", NOW + dt.timedelta(days=20), **extra)


PROD = instance(
    "prod",
    PendingModifiedValues={
        "DBInstanceClass": "db.r6g.xlarge",
        "AllocatedStorage": 200,
        "PendingCloudwatchLogsExports": {"LogTypesToEnable": ["postgresql", "upgrade"]},
    },
    DBParameterGroups=[{"DBParameterGroupName": "prod-pg13", "ParameterApplyStatus": "pending-reboot"}],
    ReadReplicaDBInstanceIdentifiers=["prod-replica"],
)
REPLICA = instance(
    "prod-replica",
    ReadReplicaSourceDBInstanceIdentifier="prod",
    MultiAZ=False,
    CertificateDetails={"CAIdentifier": "rds-ca-rsa2048-g1", "ValidTill": NOW + dt.timedelta(days=300)},
)
PENDING_ACTIONS = {
    "PendingMaintenanceActions": [
        {
            "ResourceIdentifier": PROD_ARN,
            "PendingMaintenanceActionDetails": [
                {
                    "Action": "system-update",
                    "Description": "New Operating System update is available",
                    "AutoAppliedAfterDate": NOW + dt.timedelta(days=3),
                    "ForcedApplyDate": NOW + dt.timedelta(days=5),
                    "CurrentApplyDate": NOW + dt.timedelta(days=3),
                },
                {
                    "Action": "db-upgrade",
                    "Description": "Upgrade to PostgreSQL 13.18",
                    "OptInStatus": "next-maintenance",
                },
            ],
        },
        {  # an instance the exporter does not watch
            "ResourceIdentifier": f"arn:aws:rds:{REGION}:{ACCOUNT}:db:other",
            "PendingMaintenanceActionDetails": [{"Action": "system-update", "Description": "x"}],
        },
    ]
}
STANDARD_END = dt.datetime(2026, 2, 28, tzinfo=dt.UTC)
EXTENDED_END = dt.datetime(2029, 2, 28, tzinfo=dt.UTC)
MAJOR_13 = {
    "DBMajorEngineVersions": [
        {
            "Engine": "postgres",
            "MajorEngineVersion": "13",
            "SupportedEngineLifecycles": [
                {
                    "LifecycleSupportName": "open-source-rds-standard-support",
                    "LifecycleSupportStartDate": dt.datetime(2021, 2, 24, tzinfo=dt.UTC),
                    "LifecycleSupportEndDate": STANDARD_END,
                },
                {
                    "LifecycleSupportName": "open-source-rds-extended-support",
                    "LifecycleSupportStartDate": STANDARD_END,
                    "LifecycleSupportEndDate": EXTENDED_END,
                },
            ],
        }
    ]
}


def event(identifier: str, message: str, categories: list[str], when: dt.datetime) -> dict[str, Any]:
    return {
        "SourceIdentifier": identifier,
        "SourceType": "db-instance",
        "Message": message,
        "EventCategories": categories,
        "Date": when,
        "SourceArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:db:{identifier}",
    }


@pytest.fixture
def poller(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[AWSPoller, Stubber]]:
    """The real poller for prod and its replica, its RDS client's transport a Stubber (no network at all)."""
    offline(monkeypatch, tmp_path)
    config = parse_config(
        {
            "targets": [
                {
                    "name": "prod",
                    "dsn": "postgresql://u@127.0.0.1:9/db",
                    "rds": {"identifier": "prod", "region": REGION},
                }
            ],
            "aws": {"discover": {"regions": [REGION]}, "retries": {"max_attempts": 1}},
        }
    )
    assert config.aws is not None
    clock_now = [NOW.timestamp()]
    aws_poller = AWSPoller(config.aws, config.targets, clock=lambda: clock_now[0])
    stubber = Stubber(aws_poller.clients.rds("", REGION))
    stubber.add_response(
        "describe_db_instances", {"DBInstances": [PROD, REPLICA]}, {"Filters": [], "MaxRecords": 100}
    )
    with stubber:
        yield aws_poller, stubber
    stubber.assert_no_pending_responses()


def samples(poller: AWSPoller) -> Samples:
    view = poller.view
    return Samples(join_fragments([view.for_target("prod", False), view.discovered()]).decode())


async def test_pending_changes_parameter_group_certificate_and_replica(
    poller: tuple[AWSPoller, Stubber],
) -> None:
    aws_poller, _ = poller
    assert await aws_poller.poll("rds")
    s = samples(aws_poller)
    assert sorted(
        (lbl["field"], lbl["value"], v) for lbl, v in s.all("rds_pending_modified_values", **ids("prod"))
    ) == [
        ("AllocatedStorage", "200", 1.0),
        ("DBInstanceClass", "db.r6g.xlarge", 1.0),
        ("PendingCloudwatchLogsExports.LogTypesToEnable", "postgresql,upgrade", 1.0),
    ]
    assert s.all("rds_pending_modified_values", **ids("prod-replica")) == []
    assert s.get("rds_parameter_group_pending_reboot", **ids("prod"), parameter_group="prod-pg13") == 1
    assert (
        s.get("rds_parameter_group_pending_reboot", **ids("prod-replica"), parameter_group="prod-pg13") == 0
    )
    assert (
        s.get("rds_certificate_expiry_timestamp_seconds", **ids("prod"))
        == (NOW + dt.timedelta(days=20)).timestamp()
    )
    (info,) = s.all("rds_instance_info", **ids("prod-replica"))
    assert (info[0]["role"], info[0]["source_dbidentifier"]) == ("replica", "prod")
    assert info[0]["ca_certificate_identifier"] == "rds-ca-rsa2048-g1"
    assert info[0]["pending_modified_values"] == "false"  # nothing pending, its parameter group in sync
    # prod: PendingModifiedValues and a parameter group waiting for a reboot
    assert s.get("rds_instance_info", **ids("prod"), role="primary", pending_modified_values="true") == 1


async def test_pending_maintenance_and_engine_support_dates(poller: tuple[AWSPoller, Stubber]) -> None:
    aws_poller, stubber = poller
    stubber.add_response("describe_pending_maintenance_actions", PENDING_ACTIONS, {"MaxRecords": 100})
    stubber.add_response(
        "describe_db_major_engine_versions", MAJOR_13, {"Engine": "postgres", "MajorEngineVersion": "13"}
    )
    assert await aws_poller.poll("rds")
    assert await aws_poller.poll("maintenance")
    s = samples(aws_poller)
    update = {"action": "system-update", "description": "New Operating System update is available"}
    upgrade = {"action": "db-upgrade", "description": "Upgrade to PostgreSQL 13.18"}
    assert s.get("rds_pending_maintenance", **ids("prod"), **update) == 1
    assert s.get("rds_pending_maintenance", **ids("prod"), **upgrade) == 1
    assert (
        s.get("rds_pending_maintenance_auto_applied_after_seconds", **ids("prod"), **update)
        == (NOW + dt.timedelta(days=3)).timestamp()
    )
    assert (
        s.get("rds_pending_maintenance_forced_apply_after_seconds", **ids("prod"), **update)
        == (NOW + dt.timedelta(days=5)).timestamp()
    )
    # not set: absent, never 0
    assert s.get("rds_pending_maintenance_forced_apply_after_seconds", **ids("prod"), **upgrade) is None
    assert s.all("rds_pending_maintenance", **ids("prod-replica")) == []
    assert not [lbl for _, lbl, _ in s.samples if lbl.get("dbidentifier") == "other"]
    # prometheus-rds-exporter's pending_maintenance: the most pressing action (prod's system-update is forced)
    assert s.get("rds_instance_info", **ids("prod"), pending_maintenance="forced") == 1
    assert s.get("rds_instance_info", **ids("prod-replica"), pending_maintenance="no") == 1
    version = {"engine": "postgres", "engine_version": "13.15"}
    for who in ("prod", "prod-replica"):  # one call for the one major version both run
        # days from the poll (NOW) to the end, rounded up: standard support ended 276 days before NOW
        assert s.get("rds_standard_support_engine_remaining_days", **ids(who), **version) == -276
        assert s.get("rds_extended_support_engine_remaining_days", **ids(who), **version) == 820


async def test_engine_without_dates_is_absent(poller: tuple[AWSPoller, Stubber]) -> None:
    aws_poller, stubber = poller
    stubber.add_response(
        "describe_pending_maintenance_actions", {"PendingMaintenanceActions": []}, {"MaxRecords": 100}
    )
    no_dates = {
        "DBMajorEngineVersions": [
            {"Engine": "postgres", "MajorEngineVersion": "13", "SupportedEngineLifecycles": []}
        ]
    }
    stubber.add_response(
        "describe_db_major_engine_versions", no_dates, {"Engine": "postgres", "MajorEngineVersion": "13"}
    )
    assert await aws_poller.poll("rds")
    assert await aws_poller.poll("maintenance")
    s = samples(aws_poller)
    assert s.all("rds_standard_support_engine_remaining_days", **ids("prod")) == []
    assert s.all("rds_pending_maintenance") == []


async def test_maintenance_failure_keeps_the_other_sources(poller: tuple[AWSPoller, Stubber]) -> None:
    """No rds:DescribePendingMaintenanceActions permission: the maintenance source fails on its own."""
    aws_poller, stubber = poller
    stubber.add_client_error("describe_pending_maintenance_actions", "AccessDenied", http_status_code=403)
    await fails_alone(aws_poller, "maintenance")
    s = samples(aws_poller)
    assert s.get("rds_instance_status", **ids("prod")) == 1
    assert aws_poller.stats.snapshot()[1] == {("rds", "AccessDenied"): 1}


async def test_reboot_and_failover_events_counted_once(poller: tuple[AWSPoller, Stubber]) -> None:
    """A reboot (availability), then a Multi-AZ failover, paginated; a window that overlaps the last counts
    nothing twice; an event of an instance not watched counts for nobody."""
    aws_poller, stubber = poller
    started = aws_poller.started
    reboot = event("prod", "DB instance restarted", ["availability"], NOW + dt.timedelta(seconds=30))
    failover = event(
        "prod",
        "A Multi-AZ failover that resulted in the promotion of a standby instance has started.",
        ["failover"],
        NOW + dt.timedelta(seconds=40),
    )
    window = {"SourceType": "db-instance", "StartTime": ANY, "EndTime": ANY, "MaxRecords": 100}
    stubber.add_response("describe_events", {"Events": []}, window)  # the first poll, at start-up
    stubber.add_response("describe_events", {"Events": [reboot], "Marker": "page-2"}, window)
    stubber.add_response(
        "describe_events",
        {"Events": [failover, event("other", "DB instance restarted", ["availability"], NOW)]},
        {**window, "Marker": "page-2"},
    )
    stubber.add_response("describe_events", {"Events": [reboot, failover]}, window)  # the overlap, again
    assert await aws_poller.poll("rds")
    assert await aws_poller.poll("events")
    s = samples(aws_poller)
    assert s.get("rds_events_total", **ids("prod"), event_category="availability") == 0
    assert s.get("rds_events_total", **ids("prod"), event_category="failover") == 0
    clock = aws_poller.clock
    aws_poller.clock = lambda: clock() + 60
    assert await aws_poller.poll("events")
    assert await aws_poller.poll("events")
    s = samples(aws_poller)
    assert s.get("rds_events_total", **ids("prod"), event_category="availability") == 1
    assert s.get("rds_events_total", **ids("prod"), event_category="failover") == 1
    assert s.get("rds_events_total", **ids("prod-replica"), event_category="availability") == 0
    # the next window starts EVENT_OVERLAP before the last one ended, never before start-up
    assert aws_poller.events[("", REGION)].start == max(started, started + 60 - lifecycle.EVENT_OVERLAP)


def test_pending_maintenance_label_is_the_most_pressing_action() -> None:
    """prometheus-rds-exporter's words for rds_instance_info's pending_maintenance."""

    def action(auto: float | None = None, forced: float | None = None) -> lifecycle.MaintenanceAction:
        return lifecycle.MaintenanceAction(PROD_ARN, "system-update", "x", auto, forced)

    assert lifecycle.maintenance_mode([]) == "no"
    assert lifecycle.maintenance_mode([action()]) == "pending"
    assert lifecycle.maintenance_mode([action(), action(auto=1.0)]) == "auto-applied"
    assert lifecycle.maintenance_mode([action(forced=2.0), action(auto=1.0), action()]) == "forced"
