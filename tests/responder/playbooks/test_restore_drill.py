"""restore_drill against a real moto server process, with a local PostgreSQL database playing the restored
instance (`connect.host_override`). moto makes a restored instance `available` at once; the test that times
out waiting shapes moto's DescribeDBInstances answers to `creating` (see `rds.shape_answers`)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import psycopg
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from devtools.motoserver import MotoServer
from devtools.pgserver import PostgresServer, free_port
from responder import keys
from responder.app import make_app
from responder.drills import engine
from tests.responder.playbooks.rds import shape_answers
from tests.responder.test_exactly_once import _actions
from tests.support.clock import frozen_clock
from tests.support.drills import (
    REGION,
    all_instances,
    checks,
    drill_database,
    drill_instances,
    drill_params,
    production,
)
from tests.support.responder import AUTH, ConfigFactory
from tests.support.responder_process import start_responder, wait_ready
from tests.support.webhook import wait_done

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def drill_db(pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from drill_database(pg_server, monkeypatch)


def drill_config(
    make_config: ConfigFactory, moto: MotoServer, identifier: str, params: dict[str, Any], **extra: Any
) -> Any:
    schedule = {
        "name": "weekly-restore-test",
        "cron": "0 3 * * 0",
        "action": "restore_drill",
        "target": {"dbidentifier": identifier, "aws_region": REGION},
        "params": params,
        **extra,
    }
    return make_config(
        aws={"region": REGION, "endpoint_url": moto.endpoint_url}, playbooks=[], schedules=[schedule]
    )


DrillClient = Callable[..., Awaitable[Client]]


@pytest.fixture
def drill_client(
    make_config: ConfigFactory,
    client_for: Any,
    moto_server: MotoServer,
    pg_server: PostgresServer,
    drill_db: str,
) -> DrillClient:
    """`await drill_client(ident, mode=..., **params)`: an app with one drill schedule of that instance."""

    async def factory(ident: str, mode: str = "enforce", **params: Any) -> Client:
        config = drill_config(make_config, moto_server, ident, drill_params(pg_server, **params), mode=mode)
        client: Client = await client_for(config)
        return client

    return factory


async def run_drill(client: Client) -> dict[str, Any]:
    resp = await client.post("/schedules/weekly-restore-test/run", headers=AUTH)
    assert resp.status == 202, await resp.text()
    return await wait_done(client, (await resp.json())["id"], wait=60)


async def test_a_drill_that_passes(drill_client: DrillClient, rds_client: Any) -> None:
    ident = production(rds_client)
    client = await drill_client(ident)
    restores: list[dict[str, Any]] = []
    rds = client.app[keys.RDS]
    assert rds is not None
    rds.client(REGION).meta.events.register(
        "provide-client-params.rds.RestoreDBInstanceFromDBSnapshot",
        lambda params, **_: restores.append(params),
    )
    row = await run_drill(client)
    assert row["outcome"] == "succeeded", row
    result = row["result"]
    assert result["dbidentifier"] == ident and result["source"] == "latest_snapshot"
    assert result["drill_instance"].startswith(f"{ident}-drill-") and result["deleted"] is True
    assert [c["passed"] for c in result["checks"]] == [True, True]
    assert result["checks"][0] == {
        "name": "users present",
        "value": 2,
        "expect": {"min": 1.0},
        "passed": True,
    }
    assert result["restore_seconds"] >= 0 and result["recovery_point_age_seconds"] >= 0
    (restore,) = restores
    assert restore["DBSnapshotIdentifier"] == f"{ident}-manual"  # the newest snapshot, manual or automated
    assert restore["DBInstanceClass"] == "db.t3.medium"
    tags = {t["Key"]: t["Value"] for t in restore["Tags"]}
    assert tags["pgwarden:drill"] == str(row["id"]) and int(tags["pgwarden:expires"]) > time.time()
    steps = [s["step"] for s in row["plan"]["steps"]]
    assert steps == ["source chosen", "restore requested", "available", "checks run", "deleted"]
    assert drill_instances(rds_client, ident) == []
    # the gauges come from the journal
    await client.app[keys.DRILLS].metrics.refresh(client.app[keys.JOURNAL])
    text = await (await client.get("/metrics")).text()
    labels = f'dbidentifier="{ident}",schedule="weekly-restore-test",source="latest_snapshot"'
    assert f"pgwarden_drill_last_success_timestamp_seconds{{{labels}}}" in text
    assert f"pgwarden_drill_restore_seconds{{{labels}}}" in text
    assert 'pgwarden_drill_check_success{check="users present",schedule="weekly-restore-test"} 1.0' in text
    schedules = await (await client.get("/schedules", headers=AUTH)).json()
    assert schedules[0]["last_outcome"] == "succeeded" and schedules[0]["last_decision_id"] == row["id"]


async def test_a_failing_check_fails_the_drill_and_the_instance_is_still_deleted(
    drill_client: DrillClient, rds_client: Any
) -> None:
    ident = production(rds_client)
    client = await drill_client(ident, checks=checks(min_users=1000))
    row = await run_drill(client)
    assert row["outcome"] == "failed", row
    assert row["error"] == "check 'users present' failed: value 2, expected {'min': 1000.0}"
    assert row["result"]["deleted"] is True
    assert [c["passed"] for c in row["result"]["checks"]] == [False, True]  # every check ran
    assert drill_instances(rds_client, ident) == []
    await client.app[keys.DRILLS].metrics.refresh(client.app[keys.JOURNAL])
    text = await (await client.get("/metrics")).text()
    assert 'pgwarden_drill_check_success{check="users present",schedule="weekly-restore-test"} 0.0' in text
    labels = f'dbidentifier="{ident}",schedule="weekly-restore-test",source="latest_snapshot"'
    assert f"pgwarden_drill_last_success_timestamp_seconds{{{labels}}} 0.0" in text


async def test_a_drill_that_times_out_waiting_is_deleted(drill_client: DrillClient, rds_client: Any) -> None:
    ident = production(rds_client)
    client = await drill_client(ident, wait_timeout="1s")
    shape_answers(client, DBInstanceStatus="creating")  # moto's restores are available at once
    row = await run_drill(client)
    assert row["outcome"] == "failed", row
    assert "not available after 1s (status creating)" in row["error"]
    assert row["result"]["deleted"] is True and row["result"]["restore_seconds"] is None
    assert drill_instances(rds_client, ident) == []


async def test_point_in_time_and_cross_region_sources(
    drill_client: DrillClient, rds_client: Any, moto_server: MotoServer
) -> None:
    ident = production(rds_client)
    client = await drill_client(ident, source="point_in_time", point_in_time={"before": "10m"})
    row = await run_drill(client)
    assert row["outcome"] == "succeeded", row
    assert row["plan"]["restore"]["operation"] == "RestoreDBInstanceToPointInTime"
    assert row["plan"]["restore"]["params"]["RestoreTime"] == row["plan"]["source_detail"]["restore_time"]
    assert row["result"]["recovery_point_age_seconds"] > 590  # LatestRestorableTime minus 10 minutes

    snapshot = rds_client.describe_db_snapshots(DBSnapshotIdentifier=f"{ident}-manual")["DBSnapshots"][0]
    remote = boto3.client("rds", region_name="eu-west-1", endpoint_url=moto_server.endpoint_url)
    remote.copy_db_snapshot(
        SourceDBSnapshotIdentifier=snapshot["DBSnapshotArn"],
        TargetDBSnapshotIdentifier=f"{ident}-copy",
        SourceRegion=REGION,
    )
    client = await drill_client(ident, source="cross_region_copy", region="eu-west-1")
    row = await run_drill(client)
    assert row["outcome"] == "succeeded", row
    assert row["plan"]["restore"]["region"] == "eu-west-1"
    assert row["plan"]["restore"]["params"]["DBSnapshotIdentifier"].endswith(f":snapshot:{ident}-copy")
    # this drill's instance is gone (moto is shared by the tests of a worker: others' drills may be there)
    assert [
        i
        for i in remote.describe_db_instances()["DBInstances"]
        if i["DBInstanceIdentifier"].startswith(f"{ident}-drill-")
    ] == []


async def test_dry_run_journals_the_plan_and_restores_nothing(
    drill_client: DrillClient, rds_client: Any
) -> None:
    ident = production(rds_client)
    client = await drill_client(ident, mode="dry-run")
    before = len(all_instances(rds_client))
    row = await run_drill(client)
    assert row["outcome"] == "dry_run", row
    assert row["plan"]["source_detail"]["snapshot"] == f"{ident}-manual"
    assert row["plan"]["restore"]["params"]["DBInstanceClass"] == "db.t3.medium"
    assert len(all_instances(rds_client)) == before


# ---- never anything else ---------------------------------------------------------------------------------------


def _exists(rds_client: Any, name: str) -> bool:
    return any(i["DBInstanceIdentifier"] == name for i in all_instances(rds_client))


# The sweeper and deletion refusals: tests/responder/adversarial/test_sweeper.py.


# ---- a responder killed mid-drill ------------------------------------------------------------------------------


@pytest.mark.slow
async def test_killed_mid_drill_the_restart_deletes_the_instance_and_journals_interrupted(
    moto_server: MotoServer, rds_client: Any, pg_server: PostgresServer, drill_db: str, tmp_path: Path
) -> None:
    ident = production(rds_client)
    params = drill_params(pg_server)
    config = {
        "mode": "enforce",
        "token_env": "RESPONDER_TEST_TOKEN",
        "journal": f"sqlite:///{tmp_path / 'journal.db'}",
        "aws": {"region": REGION, "endpoint_url": moto_server.endpoint_url},
        "schedules": [
            {
                "name": "weekly-restore-test",
                "cron": "0 3 * * 0",
                "action": "restore_drill",
                "target": {"dbidentifier": ident, "aws_region": REGION},
                "params": params,
            }
        ],
    }
    path = tmp_path / "responder.yml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "responder.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # The checks wait behind this lock, so the drill is caught with its instance restored.
    gate = psycopg.connect(pg_server.dsn(drill_db))
    gate.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    first = start_responder(path, port, log)
    second: subprocess.Popen[bytes] | None = None
    try:
        async with aiohttp.ClientSession(headers=AUTH) as session:
            await wait_ready(session, base, first, log)
            async with session.post(f"{base}/schedules/weekly-restore-test/run") as resp:
                assert resp.status == 202
                action_id = (await resp.json())["id"]
            deadline = time.monotonic() + 30
            while True:
                row = next(r for r in await _actions(session, base) if r["id"] == action_id)
                if row["plan"] and row["plan"]["steps"][-1]["step"] == "available":
                    break
                assert time.monotonic() < deadline, row
                await asyncio.sleep(0.1)
            assert len(drill_instances(rds_client, ident)) == 1
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            assert len(drill_instances(rds_client, ident)) == 1  # left running by the dead process
            second = start_responder(path, port, log)
            await wait_ready(session, base, second, log)
            row = next(r for r in await _actions(session, base) if r["id"] == action_id)
            assert row["state"] == "done" and row["outcome"] == "interrupted", row
            assert drill_instances(rds_client, ident) == []  # swept at start-up
            second.send_signal(signal.SIGTERM)
            assert second.wait(20) == 0
    finally:
        gate.close()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


# ---- two replicas, one tick -----------------------------------------------------------------------------------


async def test_two_replicas_on_the_postgresql_journal_restore_once_per_tick(
    make_config: ConfigFactory,
    aiohttp_server: Any,
    moto_server: MotoServer,
    rds_client: Any,
    pg_server: PostgresServer,
    drill_db: str,
    pg_journal: str,
) -> None:
    ident = production(rds_client)
    config = drill_config(make_config, moto_server, ident, drill_params(pg_server))
    config = make_config(
        journal=pg_journal,
        aws={"region": REGION, "endpoint_url": moto_server.endpoint_url},
        playbooks=[],
        schedules=[s.schema.model_dump() for s in config.schedules],
    )
    servers = [await aiohttp_server(make_app(config, clock=frozen_clock)) for _ in range(2)]
    restores: list[str] = []
    for server in servers:
        rds = server.app[keys.RDS]
        assert rds is not None
        rds.client(REGION).meta.events.register(
            "before-call.rds.RestoreDBInstanceFromDBSnapshot", lambda **_: restores.append("restore")
        )
    tick = engine.parse_time("2026-11-29T03:00:00Z")
    for server in servers:
        server.app[keys.SCHEDULER].next_run["weekly-restore-test"] = tick
    await asyncio.gather(*(server.app[keys.SCHEDULER].tick() for server in servers))
    deadline = time.monotonic() + 60
    while True:
        with psycopg.connect(pg_journal) as conn:
            rows = conn.execute("SELECT outcome FROM pgwarden_actions ORDER BY id").fetchall()
        outcomes = sorted(str(r[0]) for r in rows)
        if "succeeded" in outcomes or "failed" in outcomes:
            break
        assert time.monotonic() < deadline, outcomes
        await asyncio.sleep(0.2)
    assert outcomes == ["duplicate", "succeeded"]
    assert restores == ["restore"]
    for server in servers:  # both moved on to the next Sunday
        assert server.app[keys.SCHEDULER].next_run["weekly-restore-test"] == engine.parse_time(
            "2026-12-06T03:00:00Z"
        )
    assert drill_instances(rds_client, ident) == []
