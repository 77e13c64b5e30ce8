"""pgwarden.postgres, the one way both programs open a PostgreSQL session: the options it applies, and every
caller's sessions as the real server sees them. (With a secret or an IAM token for the password:
tests/pgwarden/test_credentials.py.)"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from devtools.pgserver import PostgresServer
from exporter.assemble import resolve_targets
from exporter.config import parse_config
from exporter.db import ServerConnections
from pgwarden import postgres
from responder.core import PostgresTarget, connect
from responder.drills.checks import check_conninfo, connect_checked
from responder.drills.models import ConnectSpec

SESSION = (
    "SELECT current_setting('application_name'), current_database(), current_setting('lock_timeout'),"
    " current_setting('statement_timeout')"
)


async def _session(conn: psycopg.AsyncConnection[Any]) -> tuple[Any, ...]:
    row = await (await conn.execute(SESSION)).fetchone()
    assert row is not None
    return tuple(row)


def test_the_options_and_fresh_credentials_override_the_dsn() -> None:
    dsn = "host=db.example port=5433 dbname=a user=u application_name=mine connect_timeout=99"
    options = postgres.SessionOptions("pgwarden-test", 2.4, dbname="b")
    params = conninfo_to_dict(postgres.conninfo(dsn, options, {"user": "rotated", "password": "token"}))
    assert params == {
        "host": "db.example",
        "port": "5433",
        "dbname": "b",
        "user": "rotated",
        "password": "token",
        "application_name": "pgwarden-test",
        "connect_timeout": "2",
    }
    assert conninfo_to_dict(postgres.conninfo(dsn, postgres.SessionOptions("x")))["dbname"] == "a"
    assert [postgres.libpq_seconds(s) for s in (0.2, 2.4, 2.6)] == [1, 2, 3]  # 0 would mean no timeout
    assert postgres.milliseconds(0.0001) == 1 and postgres.milliseconds(1.5) == 1500
    timeouts = postgres.SessionOptions("x", lock_timeout=1.0, statement_timeout=0.25)
    assert timeouts.settings() == [b"SET lock_timeout = 1000", b"SET statement_timeout = 250"]
    assert postgres.SessionOptions("x").settings() == []


async def test_a_session_gets_every_option(pg_server: PostgresServer) -> None:
    pg_server.execute("DROP DATABASE IF EXISTS pgw_session")
    pg_server.execute("CREATE DATABASE pgw_session")
    options = postgres.SessionOptions(
        "pgwarden-test",
        2.0,
        dbname="pgw_session",
        lock_timeout=1.5,
        statement_timeout=0.25,
        prepare_threshold=None,
    )
    async with await postgres.connect(pg_server.dsn(), options) as conn:
        assert await _session(conn) == ("pgwarden-test", "pgw_session", "1500ms", "250ms")
        assert conn.autocommit and conn.prepare_threshold is None


async def test_each_caller_opens_its_sessions_through_it(pg_server: PostgresServer) -> None:
    """The exporter's pool (its lock_timeout), a playbook's session, a drill's checks: one implementation."""
    [target] = resolve_targets(parse_config({"targets": [{"name": "t", "dsn": pg_server.dsn()}]}))
    pool = ServerConnections(target)
    try:
        async with pool.connection() as conn:
            assert await _session(conn) == ("pgwarden-exporter", "postgres", "1s", "0")
    finally:
        await pool.close()
    server = PostgresTarget("t", pg_server.dsn(), "display")
    async with await connect(server, dbname="template1") as conn:
        assert await _session(conn) == ("pgwarden-responder", "template1", "0", "0")
    spec = ConnectSpec(dsn_env="UNUSED", connect_retries_for=0)
    conninfo = check_conninfo(pg_server.dsn(), spec, ("127.0.0.1", pg_server.port))
    async with await connect_checked(conninfo, spec) as conn:
        assert await _session(conn) == ("pgwarden-responder", "postgres", "0", "0")
