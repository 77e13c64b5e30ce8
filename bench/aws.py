"""What the AWS half costs: calls and CloudWatch metrics requested per hour and per month.

Runs the real pollers (exporter.aws.poller) against a moto server for 1, 10 and 100 RDS PostgreSQL instances
(gp2 primaries without Performance Insights, snapshots copied to one backup region), polls each source through
one simulated hour on the poller's own clock (CloudWatch asks for a metric only when it is due, so an hour is
what shows the cadence), and prices the CloudWatch part. Only GetMetricData is billed ($0.01 per 1,000 metrics
requested); DescribeDBInstances, DescribeDBSnapshots, DescribeEvents, DescribePendingMaintenanceActions,
DescribeDBMajorEngineVersions and STS calls are free. moto lacks the two maintenance operations: their calls are
counted from what a poll asks for (one listing per region, one lookup per engine major version).

The same hour is run with the previous defaults (the 11 original metrics every 60 s) and with YACE's way
(the same metrics every 300 s, its default scraping interval), for comparison.

    .venv/bin/python bench/aws.py [--sizes 1,10,100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.motoserver import FAKE_CREDENTIALS, MotoServer, start_moto
from exporter.aws.config import DEFAULT_CLOUDWATCH_METRICS, AWSConfig
from exporter.aws.poller import SOURCES, AWSPoller

PRICE_PER_METRIC = 0.01 / 1000  # GetMetricData, USD
HOURS_PER_MONTH = 730
HOUR = 3600.0
REGION, BACKUP_REGION = "us-east-1", "eu-west-1"
ORIGINAL_METRICS = DEFAULT_CLOUDWATCH_METRICS[:11]  # the defaults before the lifecycle metrics, one cadence
DISCOVER = {"regions": [REGION], "tags": {"team": "db"}, "backup_regions": [BACKUP_REGION]}
SETUPS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "previous defaults (11 metrics every 60 s)": {
        "interval": "60s",
        "metrics": [{"name": m, "interval": "60s"} for m in ORIGINAL_METRICS],
    },
    "YACE-style (11 metrics every 300 s)": {
        "interval": "300s",
        "metrics": [{"name": m, "interval": "300s"} for m in ORIGINAL_METRICS],
    },
}


def populate(n: int) -> None:
    client = boto3.client("rds", region_name=REGION)
    for i in range(n):
        client.create_db_instance(
            DBInstanceIdentifier=f"bench-{i:03d}",
            Engine="postgres",
            EngineVersion="15.4",
            DBInstanceClass="db.t3.medium",
            AllocatedStorage=20,
            StorageType="gp2",
            MasterUsername="master",
            MasterUserPassword="not-a-real-password",
            Tags=[{"Key": "team", "Value": "db"}],
        )


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def one_hour(config: AWSConfig) -> dict[str, tuple[int, int]]:
    """Per source: (calls, metrics requested) in one hour of polls at the configured intervals (the first
    rds poll, which finds the instances, is not counted: the hour has as many as its interval fits)."""
    clock = Clock(time.time())
    poller = AWSPoller(config, [], clock=clock)
    assert await poller.poll("rds"), "rds poll failed"
    out: dict[str, tuple[int, int]] = {}
    for source in SOURCES:
        interval: float = getattr(config, source).interval
        polls = max(1, round(HOUR / interval))
        if source == "maintenance":  # moto lacks it: what one poll asks for, per unit
            instances = poller.served_instances()
            per_poll = len({i.unit for i in instances}) + len(
                {(i.engine, i.major_version) for i in instances}
            )
            out[source] = (per_poll * polls, 0)
            continue
        calls0, _, metrics0 = poller.stats.snapshot()
        start = clock.now
        for n in range(polls):
            clock.now = start + n * interval
            assert await poller.poll(source), f"{source} poll failed"
        clock.now = start
        calls1, _, metrics1 = poller.stats.snapshot()
        out[source] = (sum(calls1.values()) - sum(calls0.values()), metrics1 - metrics0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    server: MotoServer = start_moto()
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["AWS_ENDPOINT_URL"] = server.endpoint_url
    try:
        for setup, cloudwatch in SETUPS.items():
            config = AWSConfig.model_validate({"discover": DISCOVER, "cloudwatch": cloudwatch})
            intervals = ", ".join(f"{s} {getattr(config, s).interval:g}s" for s in SOURCES)
            print(f"\n{setup}: {intervals}")
            print(f"{'instances':>9} {'calls/h':>8} {'(per source)':<22} {'metrics/h':>9}  CloudWatch")
            for n in sizes:
                server.reset()
                populate(n)
                hour = asyncio.run(one_hour(config))
                calls = sum(c for c, _ in hour.values())
                metrics = sum(m for _, m in hour.values())
                month = metrics * HOURS_PER_MONTH * PRICE_PER_METRIC
                per_source = " / ".join(f"{hour[s][0]}" for s in SOURCES)
                print(
                    f"{n:>9} {calls:>8} {'(' + per_source + ')':<22} {metrics:>9}  ${month:,.2f}/month, "
                    f"${month / n:,.2f} per instance"
                )
        print(f"\n(per source: {' / '.join(SOURCES)})")
        print("Only GetMetricData is billed: $0.01 per 1,000 metrics requested; every other call is free.")
        print(
            "YACE (every 300 s by default) is put at about $0.86 per instance and month; the YACE-style row is its cadence."
        )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
