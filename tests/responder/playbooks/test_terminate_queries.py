"""terminate_queries against the real PostgreSQL: who is signalled, and who never is."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from devtools.pgserver import SUPERUSER, SUPERUSER_PASSWORD, PostgresServer
from tests.support.responder import ClientFactory, ConfigFactory
from tests.support.roles import (
    APP_PASSWORD,
    APP_ROLE,
    PROTECTED_PASSWORD,
    PROTECTED_ROLE,
    RESPONDER_PASSWORD,
    RESPONDER_ROLE,
)
from tests.support.webhook import alert, post_alerts, wait_done


@pytest.fixture
def victims_db(pg_roles: PostgresServer) -> Iterator[str]:
    name = f"victims_{uuid.uuid4().hex[:8]}"
    pg_roles.execute(f"CREATE DATABASE {name}")
    pg_roles.execute(f"GRANT ALL ON DATABASE {name} TO PUBLIC")
    yield name
    pg_roles.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Sessions:
    """Long-running psql sessions (simple query protocol, so a walsender can run SQL too)."""

    def __init__(self, server: PostgresServer, dbname: str) -> None:
        self.server = server
        self.dbname = dbname
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(
        self, name: str, user: str, password: str, sql: str, extra: str = "", app: str = "test"
    ) -> None:
        conninfo = (
            f"host=127.0.0.1 port={self.server.port} dbname={self.dbname} user={user} "
            f"application_name={app} {extra}"
        )
        self.procs[name] = subprocess.Popen(
            [str(self.server.bindir / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-c", sql, conninfo],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PGPASSWORD": password},
        )

    def activity(self) -> dict[str, dict[str, Any]]:
        rows = self.server.execute(
            "SELECT application_name, pid, backend_type, state, query_start FROM pg_stat_activity"
            " WHERE datname = %s AND application_name LIKE 't-%%'",
            params=(self.dbname,),
        )
        return {r[0]: {"pid": r[1], "backend_type": r[2], "state": r[3], "query_start": r[4]} for r in rows}

    def wait_active(self, names: list[str], timeout: float = 10) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            act = self.activity()
            if all(f"t-{n}" in act and act[f"t-{n}"]["state"] == "active" for n in names):
                return act
            for n, p in self.procs.items():
                if p.poll() is not None:
                    raise AssertionError(f"session {n} ended: {p.communicate()}")
            assert time.monotonic() < deadline, act
            time.sleep(0.05)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.communicate()


@pytest.fixture
def sessions(pg_roles: PostgresServer, victims_db: str) -> Iterator[Sessions]:
    s = Sessions(pg_roles, victims_db)
    yield s
    s.stop()


def kill_config(
    make_config: ConfigFactory, dsn: str, mode: str = "enforce", *, held: bool = False, **params: Any
) -> Any:
    """The `kill` playbook (terminate_queries, min_duration 1s, grace 300ms, `params` on top) on `dsn`, in
    `mode`; `held`: it requires approval."""
    return make_config(
        mode=mode,
        targets=[{"name": "production", "dsn": dsn}],
        playbooks=[
            {
                "name": "kill",
                "match": {"alertname": "PostgresLongRunningQuery"},
                "action": "terminate_queries",
                "params": {"min_duration": "1s", "grace": "300ms", **params},
                **({"require_approval": True} if held else {}),
            }
        ],
    )


class Responders:
    """Responders on the test server with the `kill` playbook, and long-query alerts about the victims' database."""

    def __init__(
        self, pg_roles: PostgresServer, make_config: ConfigFactory, client_for: ClientFactory, victims_db: str
    ) -> None:
        self.pg_roles = pg_roles
        self.make_config = make_config
        self.client_for = client_for
        self.victims_db = victims_db
        self.dsn = pg_roles.dsn("postgres", user=RESPONDER_ROLE, password=RESPONDER_PASSWORD)

    async def start(self, mode: str = "enforce", **params: Any) -> TestClient[web.Request, web.Application]:
        """A responder as the responder's role, its `kill` playbook with these params."""
        return await self.client_for(kill_config(self.make_config, self.dsn, mode, **params))

    async def fire(
        self, client: TestClient[web.Request, web.Application], datname: str | None = None, **labels: str
    ) -> dict[str, Any]:
        """Post one long-query alert (about the victims' database unless told) and wait for it to be done."""
        (d,) = await post_alerts(
            client, alert("PostgresLongRunningQuery", datname=datname or self.victims_db, **labels)
        )
        return await wait_done(client, d["id"])

    async def kill(self, **params: Any) -> dict[str, Any]:
        """A fresh responder with these params, one alert, and its decision, which must have succeeded."""
        row = await self.fire(await self.start(**params))
        assert row["outcome"] == "succeeded", row
        return row


@pytest.fixture
def responders(
    pg_roles: PostgresServer, make_config: ConfigFactory, client_for: ClientFactory, victims_db: str
) -> Responders:
    return Responders(pg_roles, make_config, client_for, victims_db)


async def test_cancels_ordinary_never_touches_protected(sessions: Sessions, responders: Responders) -> None:
    sleep = "SELECT pg_sleep(30)"
    sessions.start("app", APP_ROLE, APP_PASSWORD, sleep, app="t-app")
    sessions.start("super", SUPERUSER, SUPERUSER_PASSWORD, sleep, app="t-super")
    sessions.start("batch", PROTECTED_ROLE, PROTECTED_PASSWORD, sleep, app="t-batch")
    # the responder's own role and application name: another responder session is never a victim
    sessions.start("self", RESPONDER_ROLE, RESPONDER_PASSWORD, sleep, app="t-self")
    # a walsender running SQL (logical replication connection): active, long, but not a client backend
    sessions.start("wal", SUPERUSER, SUPERUSER_PASSWORD, sleep, extra="replication=database", app="t-wal")
    before = sessions.wait_active(["app", "super", "batch", "self", "wal"])
    assert before["t-wal"]["backend_type"] == "walsender"
    await asyncio.sleep(1.2)
    client = await responders.start(protect_roles=[PROTECTED_ROLE])
    # make the responder's own session look like a victim too: same role, long query, own app name
    row = await responders.fire(client, target="production")
    assert row["outcome"] == "succeeded", row
    victims = {b["pid"] for b in row["plan"]["backends"]}
    assert victims == {before["t-app"]["pid"]}, row["plan"]
    assert row["result"]["cancelled"] == [before["t-app"]["pid"]]
    assert row["result"]["terminated"] == []  # the cancel worked; the query ended before grace ran out
    _, err = sessions.procs["app"].communicate(timeout=10)
    assert "canceling statement due to user request" in err
    after = sessions.activity()
    for name in ("super", "batch", "self", "wal"):
        assert after[f"t-{name}"]["pid"] == before[f"t-{name}"]["pid"]
        assert after[f"t-{name}"]["query_start"] == before[f"t-{name}"]["query_start"]
        assert after[f"t-{name}"]["state"] == "active"
    # background processes (autovacuum launcher, checkpointer ...) are all still there
    kinds = {r[0] for r in responders.pg_roles.execute("SELECT DISTINCT backend_type FROM pg_stat_activity")}
    assert "autovacuum launcher" in kinds
    metrics = await (await client.get("/metrics")).text()
    assert "pgwarden_responder_backends_cancelled_total 1.0" in metrics


async def test_idle_in_transaction_is_terminated_when_opted_in(responders: Responders) -> None:
    idle = psycopg.connect(
        responders.pg_roles.dsn(responders.victims_db, user=APP_ROLE, password=APP_PASSWORD),
        application_name="t-idle",
    )
    idle.execute("SELECT 1")  # a transaction is open, and idle
    pid = idle.info.backend_pid
    try:
        await asyncio.sleep(1.2)
        # default states: active only -> the idle transaction is left alone
        client = await responders.start()
        row = await responders.fire(client)
        assert row["plan"]["backends"] == [] and row["result"]["terminated"] == []
        await client.close()
        client = await responders.start(states=["idle in transaction"])
        row = await responders.fire(client)
        assert row["result"]["terminated"] == [pid], row
        with pytest.raises(psycopg.OperationalError):
            idle.execute("SELECT 1")
        metrics = await (await client.get("/metrics")).text()
        assert "pgwarden_responder_backends_terminated_total 1.0" in metrics
    finally:
        idle.close()


async def test_max_kills_and_dry_run(sessions: Sessions, responders: Responders) -> None:
    for i in range(3):
        sessions.start(f"a{i}", APP_ROLE, APP_PASSWORD, "SELECT pg_sleep(30)", app=f"t-a{i}")
    before = sessions.wait_active(["a0", "a1", "a2"])
    await asyncio.sleep(1.1)
    client = await responders.start(mode="dry-run", max_kills=2)
    row = await responders.fire(client)
    assert row["outcome"] == "dry_run" and len(row["plan"]["backends"]) == 2
    assert sessions.activity().keys() >= {"t-a0", "t-a1", "t-a2"}, "dry-run signals nothing"
    await client.close()
    client = await responders.start(max_kills=2)
    row = await responders.fire(client)
    assert len(row["result"]["cancelled"]) == 2
    survivors = [
        n
        for n in ("t-a0", "t-a1", "t-a2")
        if n in sessions.activity() and sessions.activity()[n]["state"] == "active"
    ]
    assert len(survivors) == 1 and before[survivors[0]]["pid"] not in row["result"]["cancelled"]


async def test_protected_database_is_never_touched(sessions: Sessions, responders: Responders) -> None:
    sessions.start("app", APP_ROLE, APP_PASSWORD, "SELECT pg_sleep(30)", app="t-app")
    sessions.wait_active(["app"])
    await asyncio.sleep(1.1)
    client = await responders.start(protect_databases=[responders.victims_db])
    row = await responders.fire(client)
    assert row["plan"]["backends"] == []
    assert sessions.activity()["t-app"]["state"] == "active"


async def test_injection_in_labels_does_nothing(sessions: Sessions, responders: Responders) -> None:
    sessions.start("app", APP_ROLE, APP_PASSWORD, "SELECT pg_sleep(30)", app="t-app")
    sessions.wait_active(["app"])
    await asyncio.sleep(1.1)
    client = await responders.start()
    evil = "x' OR 1=1; SELECT pg_terminate_backend(pid); --"
    row = await responders.fire(client, evil, fingerprint="e1")
    assert row["outcome"] == "succeeded" and row["plan"]["backends"] == []
    longer = (
        f"{responders.victims_db}' OR '1'='1" + " " * 60
    )  # over PostgreSQL's 63-byte names: not a target at all
    (d,) = await post_alerts(client, alert("PostgresLongRunningQuery", datname=longer, fingerprint="e2"))
    assert d["outcome"] == "no_target"
    assert sessions.activity()["t-app"]["state"] == "active"


def _role(pg_roles: PostgresServer, prefix: str, *, login: bool = False, in_role: str | None = None) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:6]}"
    options = (f" LOGIN PASSWORD '{APP_PASSWORD}'" if login else " NOLOGIN") + (
        f" IN ROLE {in_role}" if in_role else ""
    )
    pg_roles.execute(f"CREATE ROLE {name}{options}")
    return name


async def test_members_of_a_protected_role_are_protected_through_any_chain(
    sessions: Sessions, responders: Responders
) -> None:
    # As on RDS: the master user is a member of rds_superuser (here through one more role in between).
    protected = _role(responders.pg_roles, "pgw_rds_superuser")
    middle = _role(responders.pg_roles, "pgw_mid", in_role=protected)
    master = _role(responders.pg_roles, "pgw_master", login=True, in_role=middle)
    sleep = "SELECT pg_sleep(30)"
    sessions.start("master", master, APP_PASSWORD, sleep, app="t-master")
    sessions.start("app", APP_ROLE, APP_PASSWORD, sleep, app="t-app")
    before = sessions.wait_active(["master", "app"])
    await asyncio.sleep(1.1)
    row = await responders.kill(protect_roles=[protected, "no_such_role_anywhere"])
    assert {b["pid"] for b in row["plan"]["backends"]} == {before["t-app"]["pid"]}, row["plan"]
    after = sessions.activity()
    assert after["t-master"]["pid"] == before["t-master"]["pid"] and after["t-master"]["state"] == "active"


async def test_set_role_to_a_superuser_is_protected(sessions: Sessions, responders: Responders) -> None:
    escalator = _role(responders.pg_roles, "pgw_escalator", login=True, in_role=SUPERUSER)
    sessions.start(
        "escalated", escalator, APP_PASSWORD, f"SET ROLE {SUPERUSER}; SELECT pg_sleep(30)", app="t-escalated"
    )
    sessions.start("app", APP_ROLE, APP_PASSWORD, "SELECT pg_sleep(30)", app="t-app")
    before = sessions.wait_active(["escalated", "app"])
    await asyncio.sleep(1.1)
    row = await responders.kill()
    assert {b["pid"] for b in row["plan"]["backends"]} == {before["t-app"]["pid"]}, row["plan"]
    after = sessions.activity()
    assert (
        after["t-escalated"]["pid"] == before["t-escalated"]["pid"]
        and after["t-escalated"]["state"] == "active"
    )
