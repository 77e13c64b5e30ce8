"""The new alerts on series the exporter really exported: a replication slot left inactive on the test
PostgreSQL, and moto's instances with an expected backup region that never got a copy.

Each test scrapes (or polls) for real, turns the samples into promtool input series that hold their value,
and lets promtool evaluate the project's rule file: so the rules' selectors and `on (...)` matches are proven
against the label sets the exporter emits, not against hand-written ones.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.motoserver import MotoServer
from devtools.pgserver import PostgresServer
from exporter.aws.poller import AWSPoller
from exporter.config import parse_config
from exporter.exposition import join_fragments
from tests.exporter.aws import support
from tests.exporter.aws.support import DOWN_DSN, MOTO_SOURCES, aws_config, build_world
from tests.support.exporter import Samples, Scraper
from tests.support.services import installed

moto, moto_session = support.moto, support.moto_session  # fixtures
ALERTS = Path(__file__).resolve().parents[3] / "alerts"
SCRAPE = {"job": "pgwarden", "instance": "exporter:9187"}  # what Prometheus adds
SLOT = "pgwarden_forgotten"


def as_series(samples: Samples, names: Iterable[str], minutes: int) -> list[dict[str, str]]:
    """promtool input series: each sample of `names`, holding its value for `minutes`."""
    series = []
    for name in names:
        for labels, value in samples.all(name):
            selector = ",".join(f'{k}="{v}"' for k, v in sorted({**labels, **SCRAPE}.items()))
            series.append({"series": f"{name}{{{selector}}}", "values": f"{value:g}x{minutes}"})
    return series


def promtool_test(
    tmp: Path, rules: str, interval: str, series: list[dict[str, str]], cases: list[Any]
) -> str:
    promtool = installed("promtool", "prometheus")
    test = {
        "rule_files": [str(ALERTS / f) for f in rules.split(",")],
        "evaluation_interval": "1m",
        "tests": [{"interval": interval, "input_series": series, "alert_rule_test": cases}],
    }
    path = tmp / "exported.test.yml"
    path.write_text(yaml.safe_dump(test))
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def quiet_then_firing(alertname: str, quiet: str, fires: str, labels: Any, annotations: Any) -> list[Any]:
    """promtool cases: nothing at `quiet` (before `for:` has passed), this one alert at `fires`."""
    return [
        {"eval_time": quiet, "alertname": alertname, "exp_alerts": []},
        {
            "eval_time": fires,
            "alertname": alertname,
            "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}],
        },
    ]


@pytest.fixture
def forgotten_slot(pg_server: PostgresServer) -> Iterable[str]:
    """A physical slot nobody streams from, with WAL written after it: what a removed standby leaves."""
    pg_server.execute(f"SELECT pg_create_physical_replication_slot('{SLOT}', true)")
    try:
        pg_server.execute("CREATE TABLE IF NOT EXISTS slot_filler (x text)")
        pg_server.execute("INSERT INTO slot_filler SELECT repeat('x', 1000) FROM generate_series(1, 2000)")
        yield SLOT
    finally:
        pg_server.execute(f"SELECT pg_drop_replication_slot('{SLOT}')")
        pg_server.execute("DROP TABLE IF EXISTS slot_filler")


async def test_inactive_slot_on_the_test_postgres_fires_the_slot_alert(
    forgotten_slot: str, scraper_factory: Callable[..., Scraper], tmp_path: Path
) -> None:
    samples = await scraper_factory().scrape('target="production"')
    assert samples.get("pg_replication_slots_active", slot_name=forgotten_slot) == 0
    retained = samples.get("pg_replication_slots_pg_wal_lsn_diff", slot_name=forgotten_slot)
    assert retained is not None and retained > 1_000_000  # the rows written after it
    assert samples.get("pg_replication_is_replica") == 0
    series = as_series(samples, ["pg_replication_slots_active", "pg_replication_is_replica"], 20)
    # a physical slot has no database: an empty label, which Prometheus drops
    labels = {
        "severity": "warning",
        **SCRAPE,
        "target": "production",
        "slot_name": forgotten_slot,
    }
    annotations = {
        "summary": f"Replication slot {forgotten_slot} on production is inactive",
        "description": (
            f"Nothing has streamed from replication slot {forgotten_slot} on production for 10 minutes. The server"
            " keeps every WAL file the slot has not consumed, until the disk is full; a forgotten slot is the"
            " usual cause of a filling disk."
        ),
        "runbook_url": "alerts/README.md#postgresreplicationslotinactive",
    }
    cases = quiet_then_firing("PostgresReplicationSlotInactive", "9m", "10m", labels, annotations)
    assert "SUCCESS" in promtool_test(tmp_path, "postgres_maintenance.rules.yml", "1m", series, cases)


async def test_expected_region_without_copy_fires_for_the_replica_only(
    moto: MotoServer, tmp_path: Path
) -> None:
    """build_world: prod's snapshots are copied to eu-west-1, its replica's are not (both are expected there);
    the stopped instance takes no snapshots and stays quiet."""
    build_world()
    config = parse_config({"targets": [{"name": "pg", "dsn": DOWN_DSN}], "aws": aws_config()})
    assert config.aws is not None
    poller = AWSPoller(config.aws, config.targets)
    for source in MOTO_SOURCES:
        assert await poller.poll(source)
    samples = Samples(join_fragments([poller.view.discovered()]).decode())
    names = [
        "rds_expected_cross_region_copy",
        "rds_latest_cross_region_snapshot_time_seconds",
        "rds_instance_status",
    ]
    series = as_series(samples, names, 450)
    replica = {"aws_account_id": "123456789012", "aws_region": "us-east-1", "dbidentifier": "prod-replica"}
    labels = {"severity": "warning", **SCRAPE, **replica, "target_region": "eu-west-1"}
    annotations = {
        "summary": "RDS prod-replica has no snapshot copy in eu-west-1",
        "description": (
            "Snapshots of RDS instance prod-replica (us-east-1) are expected in backup region eu-west-1, and there"
            " has been no copy there for 36 hours: the cross-region copy has never worked (or every copy was"
            " deleted long ago)."
        ),
        "runbook_url": "alerts/README.md#rdscrossregioncopymissing",
    }
    cases = quiet_then_firing("RDSCrossRegionCopyMissing", "35h", "36h", labels, annotations)
    assert "SUCCESS" in promtool_test(tmp_path, "rds.rules.yml,rds_lifecycle.rules.yml", "5m", series, cases)
