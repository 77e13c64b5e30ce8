"""Helpers for the tests that answer AWS calls from botocore's Stubber: no network, no real credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.aws.poller import AWSPoller
from exporter.config import parse_config
from tests.exporter.aws.support import DOWN_DSN


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
