"""What the AWS half costs: calls and CloudWatch metrics requested per poll, per hour and per month.

Runs the real pollers (exporter.aws.poller) against a moto server for 1, 10 and 100 RDS PostgreSQL instances
(gp2 primaries, snapshots copied to one backup region, the default 11 CloudWatch metrics), counts the calls one
poll cycle of each source makes, and extrapolates with the default intervals. Only GetMetricData is billed
($0.01 per 1,000 metrics requested); DescribeDBInstances, DescribeDBSnapshots and STS calls are free.

    .venv/bin/python bench/aws.py [--sizes 1,10,100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.motoserver import FAKE_CREDENTIALS, MotoServer, start_moto
from exporter.aws.config import AWSConfig
from exporter.aws.poller import SOURCES, AWSPoller

PRICE_PER_METRIC = 0.01 / 1000  # GetMetricData, USD
HOURS_PER_MONTH = 730
REGION, BACKUP_REGION = "us-east-1", "eu-west-1"


def populate(n: int) -> None:
    client = boto3.client("rds", region_name=REGION)
    for i in range(n):
        client.create_db_instance(
            DBInstanceIdentifier=f"bench-{i:03d}",
            Engine="postgres",
            DBInstanceClass="db.t3.medium",
            AllocatedStorage=20,
            StorageType="gp2",
            MasterUsername="master",
            MasterUserPassword="not-a-real-password",
            Tags=[{"Key": "team", "Value": "db"}],
        )


async def one_cycle(config: AWSConfig) -> dict[str, tuple[int, int]]:
    """Per source: (calls, metrics requested) of one poll."""
    poller = AWSPoller(config, [])
    out: dict[str, tuple[int, int]] = {}
    for source in SOURCES:
        calls0, _, metrics0 = poller.stats.snapshot()
        assert await poller.poll(source), f"{source} poll failed"
        calls1, _, metrics1 = poller.stats.snapshot()
        out[source] = (sum(calls1.values()) - sum(calls0.values()), metrics1 - metrics0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    config = AWSConfig.model_validate(
        {"discover": {"regions": [REGION], "tags": {"team": "db"}, "backup_regions": [BACKUP_REGION]}}
    )
    per_hour = {s: 3600 / getattr(config, s).interval for s in SOURCES}
    server: MotoServer = start_moto()
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["AWS_ENDPOINT_URL"] = server.endpoint_url
    try:
        print(
            "default intervals: "
            + ", ".join(f"{s} {getattr(config, s).interval:g}s ({per_hour[s]:g} polls/h)" for s in SOURCES)
        )
        print(
            f"{'instances':>9} {'source':>10} {'calls/poll':>10} {'metrics/poll':>12} {'calls/h':>8} {'metrics/h':>9}"
        )
        for n in sizes:
            server.reset()
            populate(n)
            cycle = asyncio.run(one_cycle(config))
            metrics_hour = 0.0
            for source in SOURCES:
                calls, metrics = cycle[source]
                metrics_hour += metrics * per_hour[source]
                print(
                    f"{n:>9} {source:>10} {calls:>10} {metrics:>12} {calls * per_hour[source]:>8g} "
                    f"{metrics * per_hour[source]:>9g}"
                )
            month = metrics_hour * HOURS_PER_MONTH * PRICE_PER_METRIC
            print(
                f"{n:>9} {'total':>10} {'':>10} {'':>12} {sum(cycle[s][0] * per_hour[s] for s in SOURCES):>8g} "
                f"{metrics_hour:>9g}   CloudWatch ${month:,.2f}/month, ${month / n:,.2f} per instance"
            )
        print(
            "DescribeDBInstances, DescribeDBSnapshots and AssumeRole are free; GetMetricData is $0.01 per 1,000 metrics."
        )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
