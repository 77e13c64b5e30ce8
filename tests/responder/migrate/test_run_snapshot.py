"""`migrate run` on a target with `rds:`: the pre-migration snapshot in moto, taken before the command, tagged
with the journal row and printed as the rollback point, even when the migration fails; `--no-snapshot`
journaled."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.motoserver import MotoServer
from tests.responder.migrate.scenario import (
    MigrationDb,
    journal_rows,
    manual_snapshots,
    migrate,
    on_rds,
    write_config,
)


@dataclass(frozen=True)
class OnMoto:
    """An RDS instance on moto, the client that sees it, and `write_config`'s settings for a target on it."""

    instance: str
    client: Any
    settings: dict[str, Any]


@pytest.fixture
def prod(moto_server: MotoServer, rds_client: Any, rds_instance: Callable[..., str]) -> OnMoto:
    instance = rds_instance()
    return OnMoto(instance, rds_client, on_rds(moto_server.endpoint_url, instance))


def test_a_failing_migration_keeps_its_snapshot(tmp_path: Path, db: MigrationDb, prod: OnMoto) -> None:
    """A failing migration keeps its snapshot as the rollback point: printed, tagged and journaled."""
    instance, rds_client = prod.instance, prod.client
    config = write_config(tmp_path, db, **prod.settings, retries={"attempts": 1})
    argv = ["psql", db.dsn(), "-v", "ON_ERROR_STOP=1", "-c", "ALTER TABLE missing ADD COLUMN x int"]
    code, out = migrate("run", "--config", str(config), "--target", "prod", "--", *argv)
    assert code == 1, out
    found = re.search(r"snapshot (pre-migration-(\d{14})-1) available: the rollback point", out)
    assert found, out
    assert f"rollback point: snapshot {found[1]}" in out.splitlines()[-1]
    (snapshot,) = manual_snapshots(rds_client, instance)
    assert snapshot["DBSnapshotIdentifier"] == found[1] and snapshot["Status"] == "available"
    tags = rds_client.list_tags_for_resource(ResourceName=snapshot["DBSnapshotArn"])["TagList"]
    assert {"Key": "pgwarden:migration", "Value": "1"} in tags
    (row,) = journal_rows(tmp_path)
    assert row["outcome"] == "failed" and row["result"]["snapshot"]["id"] == found[1]
    kinds = [(e["kind"], e.get("operation") or e.get("hook")) for e in row["plan"]["effects"]]
    assert kinds[:2] == [("aws", "CreateDBSnapshot"), ("hook", "migrate attempt 1")]  # the snapshot first
    code, out = migrate("status", "--config", str(config))
    assert f"\tfailed\tattempts=1\tsnapshot={found[1]}\t" in out


def test_no_snapshot_is_journaled(tmp_path: Path, db: MigrationDb, prod: OnMoto) -> None:
    config = write_config(tmp_path, db, **prod.settings)
    code, out = migrate("run", "--config", str(config), "--target", "prod", "--no-snapshot", "--", "true")
    assert code == 0, out
    assert manual_snapshots(prod.client, prod.instance) == []
    (row,) = journal_rows(tmp_path)
    assert row["result"]["snapshot"] == {"skipped": "--no-snapshot"}


def test_snapshot_asked_of_a_target_without_rds_is_refused(tmp_path: Path, db: MigrationDb) -> None:
    config = write_config(tmp_path, db)
    code, out = migrate("run", "--config", str(config), "--target", "prod", "--snapshot", "--", "true")
    assert code == 2 and "has no rds:" in out
