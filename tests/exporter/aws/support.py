"""Fixtures for the AWS tests: a real moto server process, reached over HTTP, and a known AWS world in it.

(No tests here: the AWS test modules import these fixtures.)
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from devtools.motoserver import FAKE_CREDENTIALS, MotoServer
from devtools.seeding import create_postgres, put_rds_datapoints
from exporter.aws.poller import SOURCES
from tests.support.services import moto_or_missing

REGION = "us-east-1"
BACKUP_REGION = "eu-west-1"
ROLE_ACCOUNT = "222222222222"
ROLE_ARN = f"arn:aws:iam::{ROLE_ACCOUNT}:role/pgwarden-read"
DOWN_DSN = (
    "postgresql://u:pw@127.0.0.1:9/db"  # port 9 (discard) refuses at once: pg_up 0, no PostgreSQL needed
)
FAST_RETRIES = {"max_attempts": 1, "connect_timeout": "1s", "read_timeout": "5s"}
# Only the first poll of each source runs by itself; tests poll again by hand (CloudWatch at its default
# cadence, so its window is the default one).
SLOW: dict[str, Any] = {source: {"interval": "1h"} for source in SOURCES} | {"cloudwatch": {"interval": "5m"}}
# moto has no DescribePendingMaintenanceActions nor DescribeDBMajorEngineVersions: the maintenance source is
# tested with botocore's Stubber (tests/exporter/aws/test_lifecycle_stubbed.py), everything else on moto.
MOTO_SOURCES = tuple(s for s in SOURCES if s != "maintenance")

# CloudWatch datapoints put for `prod` (newest value) and what the exporter must show.
PROD_POINTS = {
    "FreeStorageSpace": ("Bytes", 5_000_000_000.0, "rds_free_storage_bytes"),
    "CPUUtilization": ("Percent", 42.5, "rds_cpu_usage_percent_average"),
    "DatabaseConnections": ("Count", 17.0, "rds_database_connections_average"),
    "FreeableMemory": ("Bytes", 2_000_000_000.0, "rds_freeable_memory_bytes"),
    "ReadIOPS": ("Count/Second", 100.0, "rds_read_iops_average"),
    "WriteIOPS": ("Count/Second", 50.0, "rds_write_iops_average"),
    "ReadLatency": ("Seconds", 0.002, "rds_read_latency_seconds"),
    "WriteLatency": ("Seconds", 0.004, "rds_write_latency_seconds"),
    "DiskQueueDepth": ("Count", 1.5, "rds_disk_queue_depth"),
}  # BurstBalance: no datapoint, so absent


def _moto(tmp: Path) -> MotoServer:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOTO_RECORDER_FILEPATH", str(tmp / "recording.jsonl"))
        return moto_or_missing()


@pytest.fixture(scope="session")
def moto_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = _moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


def use_moto(server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp: Path) -> MotoServer:
    """Point boto3 (ours and the test's) at `server` with fake credentials, and nothing else."""
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "no-aws-credentials"))
    for key in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    return server


@pytest.fixture
def moto(moto_session: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MotoServer:
    """The session's moto server, emptied, with the environment pointing at it."""
    moto_session.reset()
    return use_moto(moto_session, monkeypatch, tmp_path)


@pytest.fixture
def own_moto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[MotoServer]:
    """A moto server of the test's own, which the test may stop."""
    server = _moto(tmp_path)
    try:
        yield use_moto(server, monkeypatch, tmp_path)
    finally:
        server.stop()


class Recording:
    """moto's own request recorder: what reached the server, counted on its side."""

    def __init__(self, server: MotoServer) -> None:
        self.server = server

    def _post(self, what: str) -> None:
        req = urllib.request.Request(
            f"{self.server.endpoint_url}/moto-api/recorder/{what}", method="POST", data=b""
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def start(self) -> None:
        self._post("reset-recording")
        self._post("start-recording")

    def stop(self) -> list[dict[str, Any]]:
        self._post("stop-recording")
        with urllib.request.urlopen(
            f"{self.server.endpoint_url}/moto-api/recorder/download-recording"
        ) as resp:
            lines = resp.read().decode().splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def targets_of(recorded: list[dict[str, Any]], operation: str) -> int:
    """How many recorded requests were `operation` (the X-Amz-Target header or the Action= of the body)."""
    n = 0
    for entry in recorded:
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        body = entry.get("body") or ""
        if entry.get("body_encoded"):
            import base64

            body = base64.b64decode(body).decode(errors="replace")
        if headers.get("x-amz-target", "").endswith(operation) or f"Action={operation}" in body:
            n += 1
    return n


def rds(region: str = REGION, **creds: str) -> Any:
    return boto3.client("rds", region_name=region, **creds)


def put_points(
    identifier: str, points: dict[str, tuple[str, float]], minutes_ago: float, region: str = REGION
) -> None:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    put_rds_datapoints(boto3.client("cloudwatch", region_name=region), identifier, when, points)


@dataclass
class World:
    """What `build_world` created, for the assertions."""

    prod: dict[str, Any]
    manual_times: list[float]
    copy_original_time: float


def build_world() -> World:
    """us-east-1: prod (team=db, gp2, autoscaling to 500 GiB), its read replica, a stopped team=db instance,
    a team=web instance, a MySQL one; snapshots of prod, one copied to eu-west-1, where an unrelated instance
    of the same name has a snapshot of its own; CloudWatch datapoints."""
    east = rds()
    prod = create_postgres(east, "prod", MaxAllocatedStorage=500, Tags=[{"Key": "team", "Value": "db"}])
    east.create_db_instance_read_replica(
        DBInstanceIdentifier="prod-replica", SourceDBInstanceIdentifier="prod", DBInstanceClass="db.t3.medium"
    )
    create_postgres(east, "sleepy", Tags=[{"Key": "team", "Value": "db"}])
    east.stop_db_instance(DBInstanceIdentifier="sleepy")
    create_postgres(east, "web", Tags=[{"Key": "team", "Value": "web"}])
    create_postgres(
        east, "legacy-mysql", Engine="mysql", EngineVersion="8.0.35", Tags=[{"Key": "team", "Value": "db"}]
    )
    manual = [
        east.create_db_snapshot(DBInstanceIdentifier="prod", DBSnapshotIdentifier=f"prod-manual-{n}")
        for n in (1, 2)
    ]
    west = rds(BACKUP_REGION)
    source = manual[0]["DBSnapshot"]
    west.copy_db_snapshot(
        SourceDBSnapshotIdentifier=source["DBSnapshotArn"],
        TargetDBSnapshotIdentifier="prod-copy",
        SourceRegion=REGION,
    )
    create_postgres(west, "prod")  # same name, another instance: its snapshots are no copies
    west.create_db_snapshot(DBInstanceIdentifier="prod", DBSnapshotIdentifier="eu-own-snapshot")
    put_points("prod", {k: (u, v * 3) for k, (u, v, _) in PROD_POINTS.items()}, minutes_ago=6)  # older
    put_points("prod", {k: (u, v) for k, (u, v, _) in PROD_POINTS.items()}, minutes_ago=3.5)  # newest
    put_points(
        "prod-replica", {"ReplicaLag": ("Seconds", 3.0), "CPUUtilization": ("Percent", 7.0)}, minutes_ago=3.5
    )
    put_points("sleepy", {"FreeStorageSpace": ("Bytes", 1.0)}, minutes_ago=3.5)  # stopped: never asked for
    return World(
        prod=prod,
        manual_times=[m["DBSnapshot"]["SnapshotCreateTime"].timestamp() for m in manual],
        copy_original_time=source["SnapshotCreateTime"].timestamp(),
    )


def aws_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "discover": {"regions": [REGION], "tags": {"team": "db"}, "backup_regions": [BACKUP_REGION]},
        "retries": FAST_RETRIES,
        **SLOW,
    }
    config.update(overrides)
    return config
