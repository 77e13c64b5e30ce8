"""Adversarial `advise`: every statement text of pg_stat_statements is hostile. Only planning happens: a second
statement in one text, a writable CTE, a function call with side effects, an IMMUTABLE function the planner would
fold (and so run) — none of them changes anything; a table locked by someone else times out instead of waiting;
a whole run leaves no index behind (hypothetical indexes only)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from devtools.pgserver import PostgresServer
from responder.advice.advisor import Server, Settings, advise
from responder.advice.plans import PlanFailed, Planner
from responder.advice.statements import Statement, refusal

SETUP = """
CREATE EXTENSION hypopg;
CREATE TABLE victim (id int PRIMARY KEY, owner int NOT NULL);
INSERT INTO victim SELECT g, g % 20000 FROM generate_series(1, 50000) g;
CREATE TABLE trail (note text);
CREATE SEQUENCE bumps;
CREATE FUNCTION bump() RETURNS bigint IMMUTABLE LANGUAGE plpgsql AS 'BEGIN RETURN nextval(''bumps''); END';
CREATE FUNCTION scribble(int) RETURNS int VOLATILE LANGUAGE sql AS 'INSERT INTO trail VALUES (''ran'') RETURNING 1';
ANALYZE;
"""


@pytest.fixture
def hostile_db(pg_server: PostgresServer) -> Iterator[str]:
    database = f"hostile_{uuid.uuid4().hex[:8]}"
    pg_server.execute(f"CREATE DATABASE {database}")
    pg_server.execute(SETUP, database)
    yield database


def _state(server: PostgresServer, database: str) -> tuple[object, ...]:
    rows = server.execute(
        "SELECT (SELECT count(*) FROM victim), (SELECT count(*) FROM trail),"
        " (SELECT last_value FROM bumps), (SELECT is_called FROM bumps),"
        " (SELECT count(*) FROM pg_class WHERE relkind = 'i')",
        database,
    )
    return rows[0]


def _plan(server: PostgresServer, database: str, text: str, params: int = 0) -> str | None:
    """Plan `text` as the advisor does (its failure reason, or None), with no prepared statement left."""

    async def go() -> str | None:
        async with await psycopg.AsyncConnection.connect(server.dsn(database), autocommit=True) as conn:
            try:
                await Planner(conn, statement_timeout=5, lock_timeout=0.5).plan(
                    Statement(1, database, 1, 1.0, text, params)
                )
                failure = None
            except PlanFailed as exc:
                failure = str(exc)
            cur = await conn.execute(b"SELECT count(*) FROM pg_prepared_statements")
            row = await cur.fetchone()
            assert row == (0,), "a prepared statement outlived the plan"
            return failure

    return asyncio.run(go())


HOSTILE = [
    "SELECT 1; DROP TABLE victim",
    "SELECT 1; COMMIT; DROP TABLE victim",
    "SELECT * FROM victim WHERE id = $1; DELETE FROM victim",
    "WITH gone AS (DELETE FROM victim RETURNING *) SELECT * FROM gone",
    "SELECT * INTO stolen FROM victim",
    "DROP TABLE victim",
    "TRUNCATE victim",
    "INSERT INTO trail VALUES ($1)",
    "CALL something()",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_the_parser_refuses_what_is_not_one_plannable_statement(text: str) -> None:
    assert refusal(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM victim WHERE owner = $1",
        "UPDATE victim SET owner = $1 WHERE id = $2",
        "DELETE FROM victim WHERE owner = $1",
        "INSERT INTO trail SELECT owner::text FROM victim WHERE id = $1",
        "SELECT pg_terminate_backend($1)",
    ],
)
def test_the_parser_lets_plannable_statements_through(text: str) -> None:
    assert refusal(text) is None


def test_a_second_statement_in_one_text_is_refused_by_the_server_too(
    pg_server: PostgresServer, hostile_db: str
) -> None:
    """Past the parser (were it wrong), the extended protocol takes one statement: nothing after the first."""
    before = _state(pg_server, hostile_db)
    for text in HOSTILE[:3]:
        failure = _plan(pg_server, hostile_db, text, params=1 if "$1" in text else 0)
        assert failure is not None and "multiple commands" in failure
    assert _state(pg_server, hostile_db) == before


def test_a_writable_cte_or_a_write_is_planned_never_run(pg_server: PostgresServer, hostile_db: str) -> None:
    """PREPARE accepts a data-modifying statement even in a read-only transaction (it only plans), and EXPLAIN
    without ANALYZE does not execute: the rows are all there after."""
    before = _state(pg_server, hostile_db)
    assert _plan(pg_server, hostile_db, HOSTILE[3]) is None
    assert _plan(pg_server, hostile_db, "DELETE FROM victim WHERE owner = $1", params=1) is None
    assert _plan(pg_server, hostile_db, "UPDATE victim SET owner = $1", params=1) is None
    assert _state(pg_server, hostile_db) == before


def test_a_function_with_side_effects_is_not_called_by_planning(
    pg_server: PostgresServer, hostile_db: str
) -> None:
    before = _state(pg_server, hostile_db)
    victim = psycopg.connect(pg_server.dsn(hostile_db), autocommit=True)
    try:
        pid = victim.info.backend_pid
        assert _plan(pg_server, hostile_db, f"SELECT pg_terminate_backend({pid})") is None
        assert _plan(pg_server, hostile_db, "SELECT scribble(1)") is None
        assert victim.execute(b"SELECT 1").fetchall() == [(1,)]  # not terminated
    finally:
        victim.close()
    assert _state(pg_server, hostile_db) == before


def test_an_immutable_function_the_planner_folds_meets_the_read_only_transaction(
    pg_server: PostgresServer, hostile_db: str
) -> None:
    """The planner runs an IMMUTABLE function with constant arguments to fold it: a lying one that writes is
    stopped by the read-only transaction, and the statement is listed as not planned."""
    before = _state(pg_server, hostile_db)
    failure = _plan(pg_server, hostile_db, "SELECT bump()")
    assert failure is not None and "read-only transaction" in failure and "25006" in failure
    assert _state(pg_server, hostile_db) == before


def test_a_locked_table_times_out_instead_of_waiting(pg_server: PostgresServer, hostile_db: str) -> None:
    holder = psycopg.connect(pg_server.dsn(hostile_db))
    try:
        holder.execute(b"LOCK TABLE victim IN ACCESS EXCLUSIVE MODE")
        failure = _plan(pg_server, hostile_db, "SELECT * FROM victim WHERE owner = $1", params=1)
        assert failure is not None and "lock timeout" in failure
    finally:
        holder.rollback()
        holder.close()


def test_a_whole_run_on_hostile_statements_leaves_nothing_behind(
    pg_server: PostgresServer, hostile_db: str
) -> None:
    """The hostile texts in pg_stat_statements (run for real first, where the server lets them), then a run of
    the advisor: every table, row, sequence value and index as it was; the needed index only advised."""
    with psycopg.connect(pg_server.dsn(hostile_db), autocommit=True) as conn:
        for _ in range(3):
            conn.execute(b"SELECT * FROM victim WHERE owner = %s", (7,))
        conn.execute(b"WITH gone AS (DELETE FROM victim WHERE owner = -1 RETURNING *) SELECT * FROM gone")
        conn.execute(b"SELECT scribble(1)")
        conn.execute(b"SELECT pg_terminate_backend(%s)", (0,))
    before = _state(pg_server, hostile_db)
    advice = asyncio.run(advise(Server("pg", pg_server.dsn()), Settings(), {hostile_db}))
    (database,) = advice.databases
    assert database.error is None, database.error
    assert [(r.table, r.columns) for r in database.recommendations] == [("victim", ("owner",))]
    assert any("data-modifying" in n.reason for n in database.not_planned)
    assert _state(pg_server, hostile_db) == before
