"""`pgwarden-responder recover` against a real moto server process (restore to point in time, rename, Secrets
Manager), the checks against a local PostgreSQL database (`connect.host_override`), hooks as real commands,
and a SQLite journal. moto makes restored and renamed instances `available` at once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from devtools.motoserver import MotoServer
from devtools.pgserver import PostgresServer
from tests.support.drills import (
    REGION,
    drill_database,
    production,
)
from tests.support.recover import (
    instance_names,
    latest_restorable,
    recovery_config,
    recovery_row,
    run_recover,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def drill_db(pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from drill_database(pg_server, monkeypatch)


@pytest.fixture
def production_config(
    tmp_path: Path, moto_server: MotoServer, rds_client: Any, pg_server: PostgresServer, drill_db: str
) -> tuple[str, Path]:
    """A production instance in moto with the drill database behind it, and the recovery config: (id, path)."""
    return production(rds_client), recovery_config(tmp_path, moto_server, pg_server)


def _steps_so_far(tmp_path: Path) -> dict[str, Any]:
    """The steps recovery 1 has journaled as done, read while it runs ({} before the journal exists)."""
    try:
        with sqlite3.connect(tmp_path / "journal.db") as conn:
            row = conn.execute("SELECT plan FROM pgwarden_actions WHERE id = 1").fetchone()
    except sqlite3.OperationalError:
        return {}
    steps: dict[str, Any] = json.loads(row[0])["steps"] if row and row[0] else {}
    return steps


def test_recover_through_all_four_steps(
    tmp_path: Path, moto_server: MotoServer, rds_client: Any, pg_server: PostgresServer, drill_db: str
) -> None:
    ident = production(rds_client)
    secrets = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_server.endpoint_url)
    secret_id = f"{ident}/app"
    secrets.create_secret(Name=secret_id, SecretString=json.dumps({"host": "stale.example", "port": 5432}))
    path = recovery_config(tmp_path, moto_server, pg_server, secret={"secret_id": secret_id})
    to = latest_restorable(rds_client, ident)
    code, out = run_recover(
        path, "--instance", ident, "--to", to, "--class", "db.t3.large", "--swap", "--yes"
    )
    assert code == 0, out
    recovered = f"{ident}-recovery-{to[:10].replace('-', '')}"
    assert f"[1/4] window: {ident} can be restored from (unknown) to" in out and f"{to} is possible" in out
    assert f"[2/4] restore: RestoreDBInstanceToPointInTime to {recovered} (db.t3.large)" in out
    assert "users present" in out and "contracts fresh" in out  # the comparison table
    assert f"{ident} is now the recovered instance" in out
    assert instance_names(rds_client, ident) == {ident, f"{ident}-old"}
    swapped = rds_client.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    assert swapped["DBInstanceClass"] == "db.t3.large"  # the recovered one now carries the name
    assert {"Key": "pgwarden:recovery", "Value": "1"} in swapped["TagList"]
    secret = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    assert secret["host"] == swapped["Endpoint"]["Address"] and secret["port"] == 5432
    hooks = (tmp_path / "hooks.log").read_text().splitlines()
    assert hooks == [f"maintenance_on {ident}", f"restart {ident}", f"maintenance_off {ident}"]
    row = recovery_row(tmp_path, 1)
    assert row["state"] == "done" and row["outcome"] == "succeeded", row
    steps = row["plan"]["steps"]
    assert {"window", "restore", "compare", "swap", "swap.drain", "swap.secret"} <= set(steps)
    compare = steps["compare"]
    assert compare["recovered"][0]["value"] == compare["production"][0]["value"] == 2


def test_recover_says_what_is_possible_outside_the_window(
    tmp_path: Path, rds_client: Any, production_config: tuple[str, Path]
) -> None:
    ident, path = production_config
    code, out = run_recover(path, "--instance", ident, "--to", "2099-01-01T00:00:00Z")
    assert code == 2, out
    assert "2099-01-01T00:00:00Z is after the latest restorable time; possible: from" in out
    assert instance_names(rds_client, ident) == {ident}
    assert recovery_row(tmp_path, 1)["outcome"] == "guardrail"


def test_recover_dry_run_prints_every_call_and_changes_nothing(
    tmp_path: Path, rds_client: Any, production_config: tuple[str, Path]
) -> None:
    ident, path = production_config
    code, out = run_recover(
        path, "--instance", ident, "--to", latest_restorable(rds_client, ident), "--swap", "--dry-run"
    )
    assert code == 0, out
    calls = [json.loads(line) for line in out.splitlines() if line.startswith("  {")]
    operations = [c.get("operation") or c.get("hook") for c in calls if "operation" in c or "hook" in c]
    assert operations[0] == "RestoreDBInstanceToPointInTime"
    assert calls[0]["params"]["SourceDBInstanceIdentifier"] == ident
    renames = [c["params"] for c in calls if c.get("operation") == "ModifyDBInstance"]
    assert renames[0]["NewDBInstanceIdentifier"] == f"{ident}-old"
    assert renames[1]["NewDBInstanceIdentifier"] == ident
    assert operations[-3:] == ["ModifyDBInstance", "restart", "maintenance_off"]
    assert instance_names(rds_client, ident) == {ident}
    assert not (tmp_path / "hooks.log").exists()
    assert recovery_row(tmp_path, 1)["outcome"] == "dry_run"


def test_swap_needs_a_confirmation(
    tmp_path: Path, rds_client: Any, production_config: tuple[str, Path]
) -> None:
    ident, path = production_config
    code, out = run_recover(path, "--instance", ident, "--to", latest_restorable(rds_client, ident), "--swap")
    assert code == 1 and "not confirmed; nothing swapped" in out, out
    assert ident in instance_names(rds_client, ident) and f"{ident}-old" not in instance_names(
        rds_client, ident
    )
    assert not (tmp_path / "hooks.log").exists()


def test_resume_after_a_kill_between_restore_and_compare(
    tmp_path: Path,
    rds_client: Any,
    pg_server: PostgresServer,
    drill_db: str,
    production_config: tuple[str, Path],
) -> None:
    ident, path = production_config
    to = latest_restorable(rds_client, ident)
    gate = psycopg.connect(pg_server.dsn(drill_db))  # step 3's checks wait behind this lock
    gate.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    log = tmp_path / "recover.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [
        sys.executable,
        "-m",
        "responder",
        "recover",
        "--config",
        str(path),
        "--instance",
        ident,
        "--to",
        to,
    ]
    with log.open("ab") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            if "restore" in _steps_so_far(tmp_path):
                break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        gate.close()
    recovered = f"{ident}-recovery-{to[:10].replace('-', '')}"
    assert instance_names(rds_client, ident) == {ident, recovered}
    assert recovery_row(tmp_path, 1)["state"] == "running"  # nobody finished it
    code, out = run_recover(path, "--resume", "1", "--swap", "--yes")
    assert code == 0, out
    assert "[1/4] window: done before" in out and "[2/4] restore: done before" in out
    assert "[3/4] compare" in out and "[4/4] swap" in out
    assert instance_names(rds_client, ident) == {ident, f"{ident}-old"}
    assert recovery_row(tmp_path, 1)["outcome"] == "succeeded"
