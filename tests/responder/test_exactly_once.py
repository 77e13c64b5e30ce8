"""Exactly once across replicas, and no action lost when a process dies mid-action."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
import yaml

from devtools.motoserver import MotoServer
from devtools.pgserver import PostgresServer, free_port
from responder import keys
from responder.app import make_app
from tests.support.clock import frozen_clock
from tests.support.responder import AUTH, ConfigFactory
from tests.support.responder_process import start_responder, wait_ready
from tests.support.roles import APP_PASSWORD, APP_ROLE, RESPONDER_PASSWORD, RESPONDER_ROLE
from tests.support.webhook import alert, payload


async def test_200_deliveries_to_two_replicas_act_once(
    make_config: ConfigFactory,
    aiohttp_server: Any,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
    pg_journal: str,
) -> None:
    ident = rds_instance("db.t3.medium")
    config = make_config(
        journal=pg_journal,
        aws={"region": "us-east-1", "endpoint_url": moto_server.endpoint_url},
        playbooks=[
            {
                "name": "scale",
                "match": {"alertname": "RDSCPUHigh"},
                "action": "scale_instance",
                "params": {
                    "ladder": ["db.t3.medium", "db.r6g.large", "db.r6g.xlarge"],
                    "max_class": "db.r6g.xlarge",
                },
                "require_approval": False,
                "cooldown": "0s",
            }
        ],  # only the exactly-once key guards here
    )
    servers = [await aiohttp_server(make_app(config, clock=frozen_clock)) for _ in range(2)]
    modify_calls: list[str] = []
    for server in servers:
        rds = server.app[keys.RDS]
        assert rds is not None
        rds.client("us-east-1").meta.events.register(
            "before-call.rds.ModifyDBInstance", lambda **kw: modify_calls.append("modify")
        )
    body = payload(alert("RDSCPUHigh", dbidentifier=ident, aws_region="us-east-1", fingerprint="f00d"))
    async with aiohttp.ClientSession(headers=AUTH) as session:

        async def post(i: int) -> int:
            async with session.post(f"{servers[i % 2].make_url('/webhook')}", json=body) as resp:
                await resp.read()
                return resp.status

        statuses = await asyncio.gather(*(post(i) for i in range(200)))
    assert statuses == [202] * 200
    deadline = time.monotonic() + 20
    while True:
        rows = (
            psycopg.connect(pg_journal)
            .execute("SELECT outcome, count(*) FROM pgwarden_actions GROUP BY outcome")
            .fetchall()
        )
        counts = {r[0]: r[1] for r in rows}
        if counts.get("succeeded") or counts.get("failed") or counts.get("guardrail"):
            break
        assert time.monotonic() < deadline, counts
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # any second execution would have started by now
    counts = {
        r[0]: r[1]
        for r in psycopg.connect(pg_journal)
        .execute("SELECT outcome, count(*) FROM pgwarden_actions GROUP BY outcome")
        .fetchall()
    }
    assert counts == {"succeeded": 1, "duplicate": 199}, counts
    assert modify_calls == ["modify"]
    desc = rds_client.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    assert desc["DBInstanceClass"] == "db.r6g.large"
    replicas = {
        r[0] for r in psycopg.connect(pg_journal).execute("SELECT owner FROM pgwarden_actions").fetchall()
    }
    assert len(replicas) == 2, "both replicas answered and journaled"


# ---- a process killed mid-action ------------------------------------------------------------------------------


@pytest.fixture
def victims(pg_roles: PostgresServer) -> Iterator[str]:
    name = f"crash_{uuid.uuid4().hex[:8]}"
    pg_roles.execute(f"CREATE DATABASE {name}")
    yield name
    pg_roles.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def _actions(session: aiohttp.ClientSession, base: str) -> list[dict[str, Any]]:
    async with session.get(f"{base}/actions?limit=10") as resp:
        assert resp.status == 200
        rows: list[dict[str, Any]] = (await resp.json())["actions"]
        return rows


@pytest.mark.slow
async def test_restart_mid_action_reports_interrupted(
    pg_roles: PostgresServer, victims: str, tmp_path: Path
) -> None:
    idle = psycopg.connect(pg_roles.dsn(victims, user=APP_ROLE, password=APP_PASSWORD))
    idle.execute("SELECT 1")  # idle in transaction: the cancel does nothing, so the action waits out `grace`
    config = {
        "mode": "enforce",
        "token_env": "RESPONDER_TEST_TOKEN",
        "journal": f"sqlite:///{tmp_path / 'journal.db'}",
        "targets": [
            {
                "name": "production",
                "dsn": pg_roles.dsn("postgres", user=RESPONDER_ROLE, password=RESPONDER_PASSWORD),
            }
        ],
        "playbooks": [
            {
                "name": "kill-idle",
                "match": {"alertname": "PostgresIdleInTransaction"},
                "action": "terminate_queries",
                "timeout": "5m",
                "params": {"min_duration": "500ms", "grace": "2m", "states": ["idle in transaction"]},
            }
        ],
    }
    path = tmp_path / "responder.yml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "responder.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = start_responder(path, port, log)
    second: subprocess.Popen[bytes] | None = None
    try:
        async with aiohttp.ClientSession(headers=AUTH) as session:
            await wait_ready(session, base, first, log)
            await asyncio.sleep(0.6)
            async with session.post(
                f"{base}/webhook", json=payload(alert("PostgresIdleInTransaction", datname=victims))
            ) as resp:
                assert resp.status == 202
                (decision,) = (await resp.json())["decisions"]
            deadline = time.monotonic() + 15
            while True:
                row = next(r for r in await _actions(session, base) if r["id"] == decision["id"])
                if row["state"] == "running" and row["plan"]:
                    break
                assert time.monotonic() < deadline, row
                await asyncio.sleep(0.1)
            first.send_signal(signal.SIGKILL)  # no cleanup, no goodbye
            first.wait(10)
            second = start_responder(path, port, log)
            await wait_ready(session, base, second, log)
            row = next(r for r in await _actions(session, base) if r["id"] == decision["id"])
            assert row["state"] == "done" and row["outcome"] == "interrupted", row
            assert "stopped while this action was running" in row["error"]
            assert row["plan"]["backends"][0]["pid"] == idle.info.backend_pid
            async with session.get(f"{base}/metrics") as resp:
                text = await resp.text()
            assert (
                'pgwarden_responder_actions_total{action="terminate_queries",outcome="interrupted",'
                'playbook="kill-idle"} 1.0'
            ) in text
            # the idle transaction was not terminated by anyone: it is still there
            idle.execute("SELECT 1")
            second.send_signal(signal.SIGTERM)
            assert second.wait(20) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        idle.close()
