"""Responder fixtures: configs, apps on the aiohttp test client, a moto server, PostgreSQL roles and journals."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from devtools.motoserver import MotoServer
from devtools.pgserver import PostgresServer
from responder.app import make_app
from responder.config import Config, build_config
from responder.core import ActionRegistry, ActionSpec, TargetKind
from responder.playbooks import default_registry
from tests.support.clock import frozen_clock
from tests.support.journal import ReadOnlyJournal
from tests.support.responder import APPROVER, ClientFactory, ConfigFactory, Recorder, RecordParams, raw_config
from tests.support.roles import RESPONDER_PASSWORD, RESPONDER_ROLE, create_roles
from tests.support.services import moto_or_missing

# ---- a test action: records its runs, optionally sleeps -------------------------------------------------------


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def registry(recorder: Recorder) -> ActionRegistry:
    reg = default_registry()
    reg.register(ActionSpec(RecordParams, TargetKind.POSTGRES, recorder.run, name="record"))
    return reg


# ---- configs and apps -----------------------------------------------------------------------------------------


@pytest.fixture
def approvers(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The `approvers` setting with alice alone, her token (APPROVER) in the environment."""
    monkeypatch.setenv("PGW_TEST_ALICE", APPROVER)
    return [{"name": "alice", "token_env": "PGW_TEST_ALICE"}]


@pytest.fixture
def make_config(tmp_path: Path, registry: ActionRegistry) -> ConfigFactory:
    """A Config from a dict; defaults: token auth, SQLite journal in tmp_path, one dummy target, enforce."""

    def factory(**overrides: Any) -> Config:
        return build_config(raw_config(tmp_path, **overrides), registry)

    return factory


@pytest.fixture
def client_for(aiohttp_client: Any) -> ClientFactory:
    async def factory(config: Config) -> TestClient[web.Request, web.Application]:
        app = make_app(config, clock=frozen_clock)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return factory


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
    create_roles(pg_server)
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


@pytest.fixture
def read_only(journal_url: str, request: pytest.FixtureRequest) -> ReadOnlyJournal:
    server = None if journal_url.startswith("sqlite:") else request.getfixturevalue("pg_server")
    return ReadOnlyJournal(journal_url, server)
