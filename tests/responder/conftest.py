"""Responder fixtures: configs, apps on the aiohttp test client, a moto server, PostgreSQL roles and journals."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient
from psycopg.conninfo import conninfo_to_dict

from devtools.motoserver import MotoServer
from devtools.pgserver import PostgresServer
from pgwarden.durations import Duration
from responder.app import make_app
from responder.config import Config, build_config
from responder.core import ActionContext, ActionParams, ActionRegistry, ActionSpec, TargetKind
from responder.playbooks import default_registry
from tests.conftest import moto_or_missing

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
APPROVER = "alice-approver-token-0123"  # approvals take an approver's own token, never the webhook's
APPROVE = {"Authorization": f"Bearer {APPROVER}"}
RESPONDER_ROLE = "pgwarden_responder"
RESPONDER_PASSWORD = "responder-pw"
APP_ROLE = "pgw_app_user"
APP_PASSWORD = "app-pw"
PROTECTED_ROLE = "pgw_batch_user"
PROTECTED_PASSWORD = "batch-pw"


# ---- a test action: records its runs, optionally sleeps -------------------------------------------------------


class RecordParams(ActionParams):
    sleep: Duration = 0.0
    fail: bool = False


class Recorder:
    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    async def run(self, ctx: ActionContext[RecordParams]) -> dict[str, Any]:
        params = ctx.params
        await ctx.save_plan({"target": ctx.target.key})
        if ctx.dry_run:
            return {"would": "record"}
        self.runs.append({"id": ctx.action_id, "target": ctx.target.key, "playbook": ctx.playbook})
        if params.sleep:
            await asyncio.sleep(params.sleep)
        if params.fail:
            raise RuntimeError("boom")
        return {"recorded": True}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def registry(recorder: Recorder) -> ActionRegistry:
    reg = default_registry()
    reg.register(ActionSpec(RecordParams, TargetKind.POSTGRES, recorder.run, name="record"))
    return reg


# ---- configs and apps -----------------------------------------------------------------------------------------

ConfigFactory = Callable[..., Config]


@pytest.fixture
def approvers(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The `approvers` setting with alice alone, her token (APPROVER) in the environment."""
    monkeypatch.setenv("PGW_TEST_ALICE", APPROVER)
    return [{"name": "alice", "token_env": "PGW_TEST_ALICE"}]


def record_playbook(**fields: Any) -> dict[str, Any]:
    """The `rec` playbook: the `record` action on TestAlert, with these fields on top."""
    return {"name": "rec", "match": {"alertname": "TestAlert"}, "action": "record", **fields}


@pytest.fixture
def make_config(tmp_path: Path, registry: ActionRegistry) -> ConfigFactory:
    """A Config from a dict; defaults: token auth, SQLite journal in tmp_path, one dummy target, enforce."""

    def factory(**overrides: Any) -> Config:
        return build_config(raw_config(tmp_path, **overrides), registry)

    return factory


def raw_config(folder: Path, **overrides: Any) -> dict[str, Any]:
    """A configuration as its YAML holds it; defaults: token auth, SQLite journal in `folder`, one dummy target,
    enforce, the `rec` playbook."""
    raw: dict[str, Any] = {
        "mode": "enforce",
        "token": TOKEN,
        "journal": f"sqlite:///{folder / 'journal.db'}",
        "targets": [{"name": "production", "dsn": "postgresql://nobody@127.0.0.1:1/none"}],
        "playbooks": [record_playbook()],
    }
    raw.update(overrides)
    return raw


def config_file(folder: Path, **overrides: Any) -> Path:
    """`raw_config(folder, **overrides)` written to `folder`/responder.yml, for a responder run as a process."""
    path = folder / "responder.yml"
    path.write_text(yaml.safe_dump(raw_config(folder, **overrides)))
    return path


ClientFactory = Callable[[Config], Awaitable[TestClient[web.Request, web.Application]]]

# The time the responders of the tests live at: a Monday noon, after the tests' Sunday 03:00 ticks and outside
# every test schedule's catch-up window, so no tick fires at start-up whatever the real time is
# (tests/responder/test_clock.py runs the schedule tests under several real clocks to prove it).
TEST_NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def frozen_clock() -> datetime:
    """The responders' clock in the tests: TEST_NOW."""
    return TEST_NOW


@pytest.fixture
def client_for(aiohttp_client: Any) -> ClientFactory:
    async def factory(config: Config) -> TestClient[web.Request, web.Application]:
        app = make_app(config, clock=frozen_clock)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return factory


def alert(
    alertname: str = "TestAlert",
    status: str = "firing",
    fingerprint: str | None = None,
    starts_at: str = "2026-11-24T03:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": alertname, "severity": "critical", **labels},
        "annotations": {"summary": "test"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint or uuid.uuid4().hex[:16],
    }


def payload(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "status": status,
        "receiver": "pgwarden",
        "groupKey": '{}:{alertname="TestAlert"}',
        "truncatedAlerts": 0,
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


async def wait_done(
    client: TestClient[web.Request, web.Application], action_id: int, wait: float = 20.0
) -> dict[str, Any]:
    """Poll /actions until the action reaches state `done` (or `pending`)."""
    deadline = time.monotonic() + wait
    while True:
        resp = await client.get("/actions?limit=1000", headers=AUTH)
        rows = (await resp.json())["actions"]
        row = next((r for r in rows if r["id"] == action_id), None)
        if row is not None and row["state"] in ("done", "pending"):
            return dict(row)
        if time.monotonic() > deadline:
            raise AssertionError(f"action {action_id} not done: {row}")
        await asyncio.sleep(0.05)


async def post_alerts(
    client: TestClient[web.Request, web.Application], *alerts: dict[str, Any]
) -> list[dict[str, Any]]:
    resp = await client.post("/webhook", json=payload(*alerts), headers=AUTH)
    assert resp.status == 202, await resp.text()
    decisions: list[dict[str, Any]] = (await resp.json())["decisions"]
    return decisions


# ---- services -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = moto_or_missing()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in server.env.items():
            patch.setenv(key, value)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def rds_client(moto_server: MotoServer) -> Any:
    return boto3.client("rds", region_name="us-east-1", endpoint_url=moto_server.endpoint_url)


@pytest.fixture
def rds_instance(rds_client: Any) -> Callable[..., str]:
    """Create an RDS PostgreSQL instance in moto with a unique identifier; returns the identifier."""

    def factory(instance_class: str = "db.t3.medium", storage: int = 100, **extra: Any) -> str:
        identifier = f"db-{uuid.uuid4().hex[:10]}"
        rds_client.create_db_instance(
            DBInstanceIdentifier=identifier,
            DBInstanceClass=instance_class,
            Engine="postgres",
            AllocatedStorage=storage,
            MasterUsername="master",
            MasterUserPassword="master-password-1",
            **extra,
        )
        return identifier

    return factory


@pytest.fixture(scope="session")
def pg_roles(pg_server: PostgresServer) -> PostgresServer:
    """The responder's role (pg_signal_backend + pg_read_all_stats, not superuser), an app role, a batch role."""
    pg_server.execute(
        f"CREATE ROLE {RESPONDER_ROLE} LOGIN PASSWORD '{RESPONDER_PASSWORD}' IN ROLE pg_signal_backend, pg_read_all_stats"
    )
    pg_server.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'")
    pg_server.execute(f"CREATE ROLE {PROTECTED_ROLE} LOGIN PASSWORD '{PROTECTED_PASSWORD}'")
    return pg_server


@pytest.fixture
def responder_dsn(pg_roles: PostgresServer) -> str:
    return pg_roles.dsn("postgres", user=RESPONDER_ROLE, password=RESPONDER_PASSWORD)


@pytest.fixture
def pg_journal(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh database on the fixture server for a PostgreSQL journal; its DSN."""
    name = f"journal_{uuid.uuid4().hex[:10]}"
    pg_server.execute(f"CREATE DATABASE {name}")
    yield pg_server.dsn(name)
    pg_server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# ---- either journal, and its outages --------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A journal of each kind: a SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.db'}"
    dsn: str = request.getfixturevalue("pg_journal")
    return dsn


def journal_sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One statement (`?` placeholders) on either journal, from outside the responder, committed."""
    if url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10)) as db:
            rows = db.execute(statement, params).fetchall()
            db.commit()
            return rows
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement.replace("?", "%s").encode(), params)
        return cur.fetchall() if cur.description else []


class ReadOnlyJournal:
    """The journal refusing every write, as a database that failed over looks to clients still connected to
    the old writer. PostgreSQL: the journal's database turns `default_transaction_read_only` and its sessions
    are ended (new ones are read-only, and writes raise ReadOnlySqlTransaction). SQLite: triggers abort every
    write (an error that is not OperationalError)."""

    TABLES = ("pgwarden_actions", "pgwarden_replicas")

    def __init__(self, url: str, server: PostgresServer | None) -> None:
        self.url = url
        self.server = server

    def _pg(self, setting: str) -> None:
        assert self.server is not None
        dbname = conninfo_to_dict(self.url)["dbname"]
        self.server.execute(f"ALTER DATABASE {dbname} {setting}")
        self.server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            params=(dbname,),
        )

    def _refuse_writes(self, refuse: bool) -> None:
        if self.server is not None:
            self._pg(
                "SET default_transaction_read_only = on" if refuse else "RESET default_transaction_read_only"
            )
            return
        for table in self.TABLES:
            for op in ("INSERT", "UPDATE", "DELETE"):
                trigger = f"ro_{table}_{op.lower()}"
                abort = "BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database'); END"
                create = f"CREATE TRIGGER {trigger} BEFORE {op} ON {table} {abort}"
                journal_sql(self.url, create if refuse else f"DROP TRIGGER {trigger}")

    @contextlib.contextmanager
    def refusing(self) -> Iterator[None]:
        """Writes refused inside the block, and allowed again however it ends."""
        self._refuse_writes(True)
        try:
            yield
        finally:
            self._refuse_writes(False)


@pytest.fixture
def read_only(journal_url: str, request: pytest.FixtureRequest) -> ReadOnlyJournal:
    server = None if journal_url.startswith("sqlite:") else request.getfixturevalue("pg_server")
    return ReadOnlyJournal(journal_url, server)
