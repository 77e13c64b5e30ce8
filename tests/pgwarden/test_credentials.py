"""dsn_secret and iam_auth: Secrets Manager in a real moto server, rotation against the real PostgreSQL, and
RDS IAM tokens made by botocore.

RDS verifies an IAM token itself; nothing local can. So the token's shape, expiry and renewal are checked
as botocore made them, and to prove that a connection carries the current token as its password, the test
sets a role's password on a real SSL-only PostgreSQL to that token just before the exporter connects (and
sees the connection refused once the exporter has moved on to a new token).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from devtools.motoserver import MotoServer
from devtools.pgserver import PostgresServer
from exporter.assemble import resolve_targets
from exporter.config import parse_config
from exporter.db import DatabaseUnavailable, ServerConnections
from pgwarden import postgres
from pgwarden.config import ConfigError, Errors
from pgwarden.credentials import (
    TOKEN_RENEW_AFTER,
    CredentialsError,
    IamAuth,
    resolve_credentials,
    secret_params,
)
from responder.config import build_config
from responder.core import PostgresTarget, connect
from responder.journal import open_store
from responder.journal.ops import op_ping
from responder.playbooks import default_registry
from tests.support.postgres import ssl_only_server
from tests.support.services import moto_in_environment

REGION = "eu-west-1"
RECONNECT_WAIT = 30.0  # a bound for waiting on the journal pool's reconnect, never asserted on


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    # The code under test finds Secrets Manager the way boto3 does: AWS_ENDPOINT_URL and the credentials.
    with moto_in_environment() as (server, patch):
        patch.delenv("AWS_REGION", raising=False)
        patch.delenv("AWS_DEFAULT_REGION", raising=False)
        yield server


@pytest.fixture(scope="module")
def secrets(moto: MotoServer) -> Any:
    return boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto.endpoint_url)


class Role:
    """A login role on a server whose password the test changes, and the secret that holds it."""

    def __init__(self, server: PostgresServer, secrets: Any, name: str) -> None:
        self.server, self.secrets, self.name = server, secrets, name
        self.secret_id = f"rds!{name}"
        server.execute(f"DROP ROLE IF EXISTS {name}")
        server.execute(f"CREATE ROLE {name} LOGIN IN ROLE pg_monitor")

    def set_password(self, password: str) -> None:
        query = sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(self.name), sql.Literal(password))
        self.server.execute(query.as_string())

    def secret(self, password: str, **extra: Any) -> str:
        return json.dumps({"username": self.name, "password": password, **extra})

    def store(self, password: str, **extra: Any) -> None:
        """Rotate: the role's password and the secret both change (what RDS's rotation does)."""
        self.set_password(password)
        text = self.secret(password, **extra)
        try:
            self.secrets.put_secret_value(SecretId=self.secret_id, SecretString=text)
        except self.secrets.exceptions.ResourceNotFoundException:
            self.secrets.create_secret(Name=self.secret_id, SecretString=text)

    def terminate(self) -> None:
        """End every session of the role, as a server restart or failover would."""
        self.server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", params=(self.name,)
        )


def test_secret_contents() -> None:
    rds = json.dumps(
        {
            "engine": "postgres",
            "username": "u",
            "password": "p w",
            "host": "db.x",
            "port": 5433,
            "dbname": "d",
        }
    )
    assert secret_params(rds, "s") == {
        "user": "u",
        "password": "p w",
        "host": "db.x",
        "port": "5433",
        "dbname": "d",
    }
    managed = json.dumps(
        {"username": "postgres", "password": "pw"}
    )  # what an RDS-managed master secret holds
    assert secret_params(managed, "s") == {"user": "postgres", "password": "pw"}
    assert secret_params("postgresql://a:b@h:1/x", "s") == {
        "user": "a",
        "password": "b",
        "host": "h",
        "port": "1",
        "dbname": "x",
    }
    for bad, message in (
        ('{"username": "u"}', "needs username and password"),
        ("{not json", "not valid JSON"),
        ("not a dsn at all", "neither a DSN nor"),
    ):
        with pytest.raises(CredentialsError, match=message):
            secret_params(bad, "s")


def test_secret_sources_are_checked() -> None:
    secret = {"secret_id": "s", "region": REGION}
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "targets": [
                    {"name": "a", "dsn_secret": secret, "dsn": "host=h", "dsn_env": "X"},
                    {"name": "b", "dsn_secret": {"secret_id": ""}},
                ]
            }
        )
    assert "targets.0: give at most one of dsn, dsn_env or dsn_file with dsn_secret" in caught.value.errors
    assert "targets.1.dsn_secret.secret_id: String should have at least 1 character" in caught.value.errors
    assert "targets.1.dsn_secret.region: Field required" in caught.value.errors
    parse_config({"targets": [{"name": "a", "dsn_secret": secret}]})  # the secret alone is a whole DSN


def test_unreadable_secret_names_its_key(moto: MotoServer) -> None:
    config = parse_config(
        {"targets": [{"name": "a", "dsn_secret": {"secret_id": "absent", "region": REGION}}]}
    )
    with pytest.raises(ConfigError) as caught:
        resolve_targets(config)
    assert caught.value.errors == [
        "targets.0.dsn_secret.secret_id: cannot read secret 'absent': ResourceNotFoundException"
    ]


def test_secret_over_a_dsn(moto: MotoServer, secrets: Any) -> None:
    """An RDS-managed secret has only username and password: the DSN gives host and database."""
    secrets.create_secret(
        Name="managed-master", SecretString=json.dumps({"username": "master", "password": "pw1"})
    )
    config = parse_config(
        {
            "targets": [
                {
                    "name": "a",
                    "dsn": "host=db.example port=5432 dbname=app sslmode=require user=ignored",
                    "dsn_secret": {"secret_id": "managed-master", "region": REGION},
                }
            ]
        }
    )
    [target] = resolve_targets(config)
    params = conninfo_to_dict(target.conninfo)
    assert {k: params[k] for k in ("host", "dbname", "user", "sslmode")} == {
        "host": "db.example",
        "dbname": "app",
        "user": "master",
        "sslmode": "require",
    }
    assert "password" not in params  # kept in the credentials only, given to each connection
    assert target.credentials is not None and target.credentials.params()["password"] == "pw1"
    assert target.display == "db.example:5432/app"
    assert target.credentials is not None and target.credentials.refreshable


async def test_exporter_reconnects_with_the_rotated_secret(
    moto: MotoServer, secrets: Any, pg_server: PostgresServer
) -> None:
    role = Role(pg_server, secrets, "pgw_rotated_exporter")
    role.store("first-password", host="127.0.0.1", port=pg_server.port, dbname="postgres")
    config = parse_config(
        {"targets": [{"name": "rds", "dsn_secret": {"secret_id": role.secret_id, "region": REGION}}]}
    )
    [target] = resolve_targets(config)
    connections = ServerConnections(target)
    try:
        async with connections.connection() as conn:
            assert (await (await conn.execute("SELECT current_user")).fetchone()) == (role.name,)
        role.store("second-password", host="127.0.0.1", port=pg_server.port, dbname="postgres")
        role.terminate()
        await connections.drop_idle()
        # The first attempt is refused (the old password); the secret is re-read and the second gets in.
        async with connections.connection("postgres") as conn:
            assert (await (await conn.execute("SELECT current_user")).fetchone()) == (role.name,)
    finally:
        await connections.close()
    static = ServerConnections(
        resolve_targets(
            parse_config(
                {
                    "targets": [
                        {"name": "old", "dsn": pg_server.dsn(user=role.name, password="first-password")}
                    ]
                }
            )
        )[0]
    )
    with pytest.raises(DatabaseUnavailable, match="password authentication failed"):
        async with static.connection():
            pass  # a plain DSN has nothing to re-read: it stays refused


async def test_responder_target_and_journal_follow_the_rotation(
    moto: MotoServer, secrets: Any, pg_server: PostgresServer, tmp_path: Path
) -> None:
    role = Role(pg_server, secrets, "pgw_rotated_responder")
    pg_server.execute("DROP DATABASE IF EXISTS pgw_rotated_journal")
    pg_server.execute(f"CREATE DATABASE pgw_rotated_journal OWNER {role.name}")
    location = {"host": "127.0.0.1", "port": pg_server.port}
    role.store("first-password", **location)
    secret = {"secret_id": role.secret_id, "region": REGION}
    config = build_config(
        {
            "auth": "none",
            "journal": f"postgresql://127.0.0.1:{pg_server.port}/pgw_rotated_journal",
            "journal_dsn_secret": secret,
            "targets": [
                {"name": "db", "dsn": f"dbname=postgres port={pg_server.port}", "dsn_secret": secret}
            ],
        },
        default_registry(),
    )
    [server] = config.servers
    target = PostgresTarget(server.name, server.conninfo, server.display, None, server.credentials)
    store = open_store(config.journal, pool_size=2, timeout=3.0, credentials=config.journal_credentials)
    await store.start()
    try:
        await store.run(op_ping)
        role.store("second-password", **location)
        role.terminate()
        conn = await connect(target)
        await conn.close()
        # The pool finds its connection gone, and its reconnect is refused once before the secret is re-read.
        deadline = time.monotonic() + RECONNECT_WAIT
        while True:
            try:
                await store.run(op_ping)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await store.close()
    assert "first-password" not in repr(config) and "second-password" not in repr(server)


# ---- IAM auth ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ssl_server() -> Iterator[PostgresServer]:
    with ssl_only_server() as server:
        yield server


def token_query(token: str) -> dict[str, str]:
    where, _, query = token.partition("/?")
    return {"address": where, **{k: v[0] for k, v in urllib.parse.parse_qs(query).items()}}


def iam_target(server: PostgresServer, user: str, **iam: Any) -> Any:
    dsn = f"host=127.0.0.1 port={server.port} user={user} dbname=postgres"
    config = parse_config({"targets": [{"name": "iam", "dsn": dsn, "iam_auth": iam or True}]})
    [target] = resolve_targets(config, env={"AWS_REGION": REGION})
    return target


def test_iam_token_shape_and_renewal(moto: MotoServer, ssl_server: PostgresServer) -> None:
    target = iam_target(ssl_server, "iam_reader")
    assert conninfo_to_dict(target.conninfo)["sslmode"] == "require"  # SSL at least, when the DSN is silent
    credentials = target.credentials
    assert credentials is not None and credentials.iam is not None and credentials.iam.region == REGION
    clock = [time.time()]
    credentials.iam.clock = lambda: clock[0]
    first = credentials.params()
    token = token_query(first["password"])
    assert token["address"] == f"127.0.0.1:{ssl_server.port}"
    assert token["Action"] == "connect" and token["DBUser"] == "iam_reader"
    assert token["X-Amz-Expires"] == "900"
    assert token["X-Amz-Credential"].endswith(f"/{REGION}/rds-db/aws4_request")
    signed_at = time.mktime(time.strptime(token["X-Amz-Date"], "%Y%m%dT%H%M%SZ")) - time.timezone
    assert abs(signed_at - time.time()) < 300
    clock[0] += TOKEN_RENEW_AFTER - 1
    assert credentials.params()["password"] == first["password"]  # reused while it has time left
    time.sleep(1.1)  # the signature has a one-second clock: let the next token's differ
    clock[0] += 2
    renewed = credentials.params()["password"]
    assert renewed != first["password"]
    assert token_query(renewed)["X-Amz-Date"] > token["X-Amz-Date"]


async def test_connections_carry_the_current_token(moto: MotoServer, ssl_server: PostgresServer) -> None:
    ssl_server.execute("DROP ROLE IF EXISTS iam_user")
    ssl_server.execute("CREATE ROLE iam_user LOGIN")
    target = iam_target(ssl_server, "iam_user", region=REGION)
    credentials = target.credentials
    assert credentials is not None and credentials.iam is not None
    clock = [time.time()]
    credentials.iam.clock = lambda: clock[0]

    def role_accepts(token: str) -> None:
        query = sql.SQL("ALTER ROLE iam_user PASSWORD {}").format(sql.Literal(token))
        ssl_server.execute(query.as_string())

    role_accepts(credentials.params()["password"])
    connections = ServerConnections(target)
    try:
        async with connections.connection() as conn:
            cur = await conn.execute("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert await cur.fetchone() == ("iam_user", True)
        await connections.drop_idle()
        await asyncio.sleep(1.1)
        clock[0] += (
            TOKEN_RENEW_AFTER + 1
        )  # the token is due for renewal: the next connection carries a new one
        with pytest.raises(DatabaseUnavailable, match="password authentication failed"):
            async with connections.connection():
                pass
        role_accepts(credentials.params()["password"])  # the token it now holds
        async with connections.connection() as conn:
            assert await (await conn.execute("SELECT current_user")).fetchone() == ("iam_user",)
    finally:
        await connections.close()
    with pytest.raises(psycopg.OperationalError):  # and without SSL the server refuses the same role
        psycopg.connect(target.conninfo.replace("sslmode=require", "sslmode=disable"), password="x")


def test_iam_configuration_errors() -> None:
    errors = Errors()
    base = "host=/var/run/postgresql user='' password=secret sslmode=prefer"
    assert resolve_credentials(base, None, True, "targets.0", errors, env={}) is None
    assert errors.lines == [
        "targets.0.iam_auth: the DSN must not hold a password: the IAM token is the password",
        "targets.0.iam_auth: needs the server's host name in the DSN (the token is signed for it)",
        "targets.0.iam_auth: needs the database user in the DSN",
        "targets.0.iam_auth: needs sslmode require, verify-ca, verify-full (the DSN says prefer)",
        "targets.0.iam_auth: no region: give iam_auth: {region: ...}, or set AWS_REGION",
    ]
    rds_host = "host=mydb.abc123xyz.eu-central-1.rds.amazonaws.com user=u sslmode=verify-full"
    resolved = resolve_credentials(rds_host, None, True, "", Errors(), env={})
    assert resolved is not None and resolved[1] is not None and resolved[1].iam is not None
    assert resolved[1].iam.region == "eu-central-1"  # from the host name
    explicit = resolve_credentials(rds_host, None, IamAuth(region="us-east-2"), "", Errors(), env={})
    assert explicit is not None and explicit[1] is not None and explicit[1].iam is not None
    assert explicit[1].iam.region == "us-east-2"


def test_journal_secret_conflicts(moto: MotoServer) -> None:
    secret = {"secret_id": "absent-journal", "region": REGION}
    for extra, message in (
        ({"journal": "sqlite:///tmp/j.db"}, "journal_dsn_secret: conflicts with a sqlite: journal"),
        ({"journal_dsn_env": "JOURNAL_DSN"}, "journal_dsn_secret: conflicts with journal_dsn_env"),
        ({}, "journal_dsn_secret.secret_id: cannot read secret 'absent-journal': ResourceNotFoundException"),
    ):
        with pytest.raises(ConfigError) as caught:
            build_config({"auth": "none", "journal_dsn_secret": secret, **extra}, default_registry())
        assert message in caught.value.errors


# ---- one connect() whatever gives the password -------------------------------------------------------------------


@pytest.mark.parametrize("source", ["dsn", "dsn_secret", "iam_auth"])
async def test_one_connect_for_every_source_of_credentials(
    source: str, request: pytest.FixtureRequest
) -> None:
    """pgwarden.postgres.connect: the same session options, whether the DSN, a secret or an IAM token holds the
    password."""
    user = f"pgw_connect_{source}"
    if source == "iam_auth":
        request.getfixturevalue("moto")
        server: PostgresServer = request.getfixturevalue("ssl_server")
        server.execute(f"DROP ROLE IF EXISTS {user}")
        server.execute(f"CREATE ROLE {user} LOGIN")
        target = iam_target(server, user)
        assert target.credentials is not None
        token = sql.Literal(target.credentials.params()["password"])
        server.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), token).as_string())
    else:
        server = request.getfixturevalue("pg_server")
        server.execute(f"DROP ROLE IF EXISTS {user}")
        server.execute(f"CREATE ROLE {user} LOGIN PASSWORD 'pw-1'")
        entry: dict[str, Any] = {"name": "t", "dsn": server.dsn(user=user, password="pw-1")}
        if source == "dsn_secret":
            role = Role(server, request.getfixturevalue("secrets"), user)
            role.store("pw-2", host="127.0.0.1", port=server.port, dbname="postgres")
            entry = {"name": "t", "dsn_secret": {"secret_id": role.secret_id, "region": REGION}}
        [target] = resolve_targets(parse_config({"targets": [entry]}))
    server.execute("DROP DATABASE IF EXISTS pgw_connect")
    server.execute("CREATE DATABASE pgw_connect")
    options = postgres.SessionOptions(
        "pgwarden-test", 2.0, dbname="pgw_connect", lock_timeout=1.5, statement_timeout=0.25
    )
    async with await postgres.connect(target.conninfo, options, target.credentials) as conn:
        cur = await conn.execute(
            "SELECT current_user, current_database(), current_setting('application_name'),"
            " current_setting('lock_timeout'), current_setting('statement_timeout')"
        )
        assert await cur.fetchone() == (user, "pgw_connect", "pgwarden-test", "1500ms", "250ms")
