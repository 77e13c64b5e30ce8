"""Seed the compose stack's moto server with what the exporter's AWS collectors read.

us-east-1: the PostgreSQL instance `skillancer-production` (db.t3.medium, 100 GiB gp2, autoscaling to 500 GiB,
7 days of backups), two manual snapshots, one of them copied to eu-west-1 (the cross-region backup), and
CloudWatch AWS/RDS datapoints, one a minute, from `--backfill` ago to `--ahead` from now (CloudWatch accepts
timestamps up to two hours ahead), so a one-shot run keeps the dashboards fed for that long.
`--follow` keeps publishing the current minute's datapoints afterwards instead of exiting.

Run by docker-compose.yml (`moto-seed`, with deploy/ and devtools/ mounted side by side) against
http://moto:5000; by hand:
    AWS_ENDPOINT_URL=http://127.0.0.1:5000 python deploy/seed-moto.py
Idempotent: a second run finds the instance and the snapshots and only adds datapoints.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.exceptions import ClientError

# devtools/ is the directory's sibling, in the repository and in the compose stack's seeder alike.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.seeding import create_postgres, put_rds_datapoints

REGION = "us-east-1"
BACKUP_REGION = "eu-west-1"
IDENTIFIER = "skillancer-production"
GIB = 1024**3
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def client(service: Literal["rds", "cloudwatch"], region: str) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))


def wait_for_moto(endpoint: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint.rstrip('/')}/moto-api/", timeout=2) as resp:
                resp.read()
            return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise SystemExit(f"seed-moto: no moto server at {endpoint} after {timeout:g}s") from None
            time.sleep(1)


def ensure_instance(rds: Any) -> dict[str, Any]:
    try:
        found: dict[str, Any] = rds.describe_db_instances(DBInstanceIdentifier=IDENTIFIER)["DBInstances"][0]
        return found
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "DBInstanceNotFound":
            raise
    return create_postgres(
        rds,
        IDENTIFIER,
        MaxAllocatedStorage=500,
        MultiAZ=True,
        Tags=[{"Key": "team", "Value": "db"}, {"Key": "env", "Value": "production"}],
    )


def ensure_snapshots(rds: Any, backup: Any) -> None:
    existing = {s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots()["DBSnapshots"]}
    arns: list[str] = []
    for n in (1, 2):
        name = f"{IDENTIFIER}-manual-{n}"
        if name not in existing:
            rds.create_db_snapshot(DBInstanceIdentifier=IDENTIFIER, DBSnapshotIdentifier=name)
        arns.append(rds.describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"][0]["DBSnapshotArn"])
    copies = {s["DBSnapshotIdentifier"] for s in backup.describe_db_snapshots()["DBSnapshots"]}
    if f"{IDENTIFIER}-copy" not in copies:
        backup.copy_db_snapshot(
            SourceDBSnapshotIdentifier=arns[-1],
            TargetDBSnapshotIdentifier=f"{IDENTIFIER}-copy",
            SourceRegion=REGION,
        )


def datapoints(when: dt.datetime) -> dict[str, tuple[str, float]]:
    """A plausible, slowly varying production instance (CPU has a daily-ish wave)."""
    phase = math.sin(when.timestamp() / 3600 * math.pi)
    return {
        "CPUUtilization": ("Percent", 45 + 25 * phase),
        "DatabaseConnections": ("Count", 80 + 20 * phase),
        "FreeStorageSpace": ("Bytes", 38 * GIB - (when.timestamp() % 86400) * 1000),
        "FreeableMemory": ("Bytes", 1.2 * GIB),
        "ReadIOPS": ("Count/Second", 350 + 100 * phase),
        "WriteIOPS": ("Count/Second", 120 + 40 * phase),
        "ReadLatency": ("Seconds", 0.0012),
        "WriteLatency": ("Seconds", 0.0025),
        "BurstBalance": ("Percent", 96.0),
        "DiskQueueDepth": ("Count", 0.8 + 0.5 * phase),
    }


def put_minutes(cloudwatch: Any, start: dt.datetime, end: dt.datetime) -> int:
    when = start.replace(second=0, microsecond=0)
    count = 0
    while when <= end:
        put_rds_datapoints(cloudwatch, IDENTIFIER, when, datapoints(when))
        count += 1
        when += dt.timedelta(minutes=1)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backfill", type=int, default=60, help="minutes of datapoints before now (60)")
    parser.add_argument("--ahead", type=int, default=120, help="minutes of datapoints after now (120)")
    parser.add_argument("--follow", action="store_true", help="then publish a datapoint a minute, forever")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for moto to answer (60)")
    args = parser.parse_args(argv)
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        print("seed-moto: AWS_ENDPOINT_URL is not set; refusing to touch real AWS", file=sys.stderr)
        return 2
    wait_for_moto(endpoint, args.wait)
    rds = client("rds", REGION)
    instance = ensure_instance(rds)
    ensure_snapshots(rds, client("rds", BACKUP_REGION))
    cloudwatch = client("cloudwatch", REGION)
    now = dt.datetime.now(dt.UTC)
    minutes = put_minutes(
        cloudwatch, now - dt.timedelta(minutes=args.backfill), now + dt.timedelta(minutes=args.ahead)
    )
    print(
        f"seed-moto: {instance['DBInstanceIdentifier']} ({instance['DBInstanceClass']}) in {REGION}, snapshots "
        f"copied to {BACKUP_REGION}, {minutes} minute(s) of CloudWatch datapoints at {endpoint}",
        flush=True,
    )
    while args.follow:
        time.sleep(60)
        now = dt.datetime.now(dt.UTC)
        put_minutes(cloudwatch, now, now)
    return 0


if __name__ == "__main__":
    sys.exit(main())
