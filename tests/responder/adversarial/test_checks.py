"""Drill and recovery checks cannot write (issue 19, hole 14).

The runtime cases run the checks against the real PostgreSQL of the test session; the config cases go through
`build_config`, the loader `pgwarden-responder` uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from devtools.pgserver import PostgresServer
from responder.config import ConfigError, build_config
from responder.drills import checks
from responder.drills.models import Check, ConnectSpec
from responder.playbooks import default_registry
from tests.support.drills import DSN_ENV, connect, drill_database


@pytest.fixture
def drill_db(pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from drill_database(pg_server, monkeypatch)


def _run(pg_server: PostgresServer, drill_db: str, check_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    spec = ConnectSpec.model_validate(connect(pg_server))
    conninfo = checks.check_conninfo(pg_server.dsn(drill_db), spec, ("unused.invalid", 1))
    models = [Check.model_validate(c) for c in check_list]
    return asyncio.run(checks.run_checks(conninfo, spec, models))


def _user_ids(pg_server: PostgresServer, drill_db: str) -> list[int]:
    with psycopg.connect(pg_server.dsn(drill_db)) as conn:
        return [int(r[0]) for r in conn.execute("SELECT id FROM users ORDER BY id").fetchall()]


# The first check turns read-only off for the session in a form no config check can see (the setting's name is
# computed); the second tries to insert into production.
TURN_READ_ONLY_OFF = "SELECT set_config('default_transaction_' || 'read_only', 'off', false)"
INSERT = "WITH made AS (INSERT INTO users VALUES (99) RETURNING id) SELECT count(*) FROM made"


def test_a_check_cannot_make_the_next_one_write(pg_server: PostgresServer, drill_db: str) -> None:
    results = _run(
        pg_server,
        drill_db,
        [
            {"name": "read-only off", "sql": TURN_READ_ONLY_OFF, "expect": {"equals": "off"}},
            {"name": "insert", "sql": INSERT, "expect": {"min": 0}},
            {"name": "users present", "sql": "SELECT count(*) FROM users", "expect": {"equals": 2}},
        ],
    )
    assert results[1]["passed"] is False
    assert "read-only transaction" in results[1]["error"]
    assert results[2]["passed"] is True, results  # the session is usable after the refused insert
    assert _user_ids(pg_server, drill_db) == [1, 2]


def test_a_check_cannot_make_its_own_transaction_write(pg_server: PostgresServer, drill_db: str) -> None:
    sql = (
        "WITH off AS (SELECT set_config('transaction_' || 'read_only', 'off', true))"
        " INSERT INTO users SELECT 98 FROM off RETURNING id"
    )
    results = _run(pg_server, drill_db, [{"name": "sneaky", "sql": sql, "expect": {"min": 0}}])
    assert results[0]["passed"] is False and results[0]["error"]
    assert _user_ids(pg_server, drill_db) == [1, 2]


def test_statement_timeout_set_by_a_check_does_not_last(pg_server: PostgresServer, drill_db: str) -> None:
    results = _run(
        pg_server,
        drill_db,
        [
            {
                "name": "unlimit",
                "sql": "SELECT set_config('statement_timeout', '0', false)",
                "expect": {"min": 0},
            },
            {
                "name": "timeout",
                "sql": "SELECT current_setting('statement_timeout')",
                "expect": {"equals": "5min"},
            },
        ],
    )
    assert results[1]["value"] == "5min", results


def _config(check_sql: str) -> dict[str, Any]:
    return {
        "auth": "none",
        "journal": "sqlite:///unused.db",
        "aws": {"region": "us-east-1"},
        "recovery": {
            "connect": {"dsn_env": DSN_ENV},
            "checks": [
                {"name": "fine", "sql": "SELECT 1", "expect": {"min": 1}},
                {"name": "bad", "sql": check_sql, "expect": {"min": 0}},
            ],
        },
    }


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN",
        "begin read write",
        "START TRANSACTION READ WRITE",
        "COMMIT",
        "END",
        "ABORT",
        "ROLLBACK",
        "SAVEPOINT s",
        "SET TRANSACTION READ WRITE",
        "set session characteristics as transaction read write",
        "RESET ALL",
        "DISCARD ALL",
        "SET default_transaction_read_only = off",
        "SET SESSION transaction_read_only TO off",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        "select pg_catalog.set_config( 'transaction_read_only' , 'off', true)",
        "/* a comment */ -- and another\n COMMIT",
        "SELECT 1; COMMIT; INSERT INTO users VALUES (3)",
    ],
)
def test_the_config_rejects_transaction_control_in_a_check(sql: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(_config(sql), default_registry())
    assert any(e.startswith("recovery.checks.1.sql:") for e in caught.value.errors), caught.value.errors


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM users",
        "SELECT CASE WHEN count(*) > 0 THEN 1 ELSE 0 END FROM users",
        "SELECT 'commit; begin' AS text",
        "SELECT $$ROLLBACK$$",
        'SELECT 1 AS "end";',
        "SELECT current_setting('default_transaction_read_only')",
    ],
)
def test_the_config_accepts_ordinary_checks(sql: str) -> None:
    build_config(_config(sql), default_registry())
