"""Helpers for the tests that answer AWS calls from botocore's Stubber: no network, no real credentials."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from exporter.aws.poller import AWSPoller, Source
from exporter.config import parse_config
from tests.exporter.aws.support import DOWN_DSN

ACCOUNT = "123456789012"


def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials, no AWS configuration file, no endpoint: every client built here answers from a
    Stubber or not at all."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def discovering_poller(region: str) -> AWSPoller:
    """A poller discovering `region`'s PostgreSQL instances, one attempt per call, next to a target that is
    down."""
    config = parse_config(
        {
            "targets": [{"name": "pg", "dsn": DOWN_DSN}],
            "aws": {"discover": {"regions": [region]}, "retries": {"max_attempts": 1}},
        }
    )
    assert config.aws is not None
    return AWSPoller(config.aws, config.targets)


def rds_instance(
    identifier: str, region: str, version: str, instance_class: str, ca_valid_till: dt.datetime, **extra: Any
) -> dict[str, Any]:
    """A DescribeDBInstances entry of an available PostgreSQL `version` instance in ACCOUNT, as RDS returns it
    (the fields the exporter reads), `extra` on top."""
    raw: dict[str, Any] = {
        "DBInstanceIdentifier": identifier,
        "DBInstanceArn": f"arn:aws:rds:{region}:{ACCOUNT}:db:{identifier}",
        "DbiResourceId": f"db-{identifier.upper().replace('-', '')}",
        "DBInstanceClass": instance_class,
        "Engine": "postgres",
        "EngineVersion": version,
        "DBInstanceStatus": "available",
        "AllocatedStorage": 100,
        "BackupRetentionPeriod": 7,
        "CACertificateIdentifier": "rds-ca-rsa2048-g1",
        "CertificateDetails": {"CAIdentifier": "rds-ca-rsa2048-g1", "ValidTill": ca_valid_till},
        "PerformanceInsightsEnabled": True,
        "TagList": [],
    }
    raw.update(extra)
    return raw


async def fails_alone(poller: AWSPoller, source: Source) -> None:
    """The `rds` source polls and `source` fails: one source's failure is its own."""
    assert await poller.poll("rds")
    assert not await poller.poll(source)
