"""Adversarial `advise`, second round: what the planner itself runs. Planning evaluates IMMUTABLE functions
with constant arguments (and STABLE ones, to estimate selectivity); a statement text can reach a user's function
directly, through a view, a column default or an operator. The read-only transaction stops writes and the
statement timeout bounds time, but not a signal, an advisory lock or a call out (dblink): such statements are
refused before planning. Also: utility statements hidden in a text, row locks, quoting, search_path."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from devtools.pgserver import PostgresServer
from responder.advice.advisor import Server, Settings, advise
from responder.advice.model import DatabaseAdvice
from responder.advice.statements import placeholders, refusal
from tests.support.postgres import hot_standby

SETUP = """
DO $$BEGIN  -- the pinned builds of other majors have no hypopg: only the index advice needs it
  IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'hypopg') THEN CREATE EXTENSION hypopg; END IF;
END$$;
CREATE TABLE victim (id int PRIMARY KEY, owner int NOT NULL, note text);
INSERT INTO victim SELECT g, g % 20000, 'n' FROM generate_series(1, 50000) g;
CREATE TABLE trail (note text);
CREATE FUNCTION nap() RETURNS int IMMUTABLE LANGUAGE plpgsql AS 'BEGIN PERFORM pg_sleep(3600); RETURN 1; END';
CREATE FUNCTION untimed_nap() RETURNS int IMMUTABLE LANGUAGE plpgsql AS
  'BEGIN PERFORM set_config(''statement_timeout'', ''0'', true); PERFORM pg_sleep(3600); RETURN 1; END';
CREATE FUNCTION unlock_and_write() RETURNS int IMMUTABLE LANGUAGE plpgsql AS
  'BEGIN PERFORM set_config(''transaction_read_only'', ''off'', true); INSERT INTO trail VALUES (''w'');
   RETURN 1; END';
CREATE FUNCTION grab() RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT 1 FROM pg_advisory_lock(4242)';
ANALYZE;
"""


@pytest.fixture
def planted_db(pg_server: PostgresServer) -> Iterator[str]:
    database = f"planner_{uuid.uuid4().hex[:8]}"
    pg_server.execute(f"CREATE DATABASE {database}")
    pg_server.execute(SETUP, database)
    yield database


def _record(server: PostgresServer, database: str, *texts: str) -> None:
    """Put `texts` in pg_stat_statements: run each for real (as an application did), errors ignored."""
    with psycopg.connect(server.dsn(database), autocommit=True) as conn:
        for text in texts:
            with contextlib.suppress(psycopg.Error):
                conn.execute(text.encode())


def _advise(server: PostgresServer, database: str, **settings: float) -> DatabaseAdvice:
    advice = asyncio.run(advise(Server("pg", server.dsn()), Settings(**settings), {database}))  # type: ignore[arg-type]
    (result,) = advice.databases
    return result


def _reason(result: DatabaseAdvice, fragment: str) -> str:
    reasons = [n.reason for n in result.not_planned if fragment in n.statement.text]
    assert reasons, f"{fragment!r} not among the statements not planned: {result.not_planned}"
    return reasons[0]


@pytest.fixture
def bystander(pg_server: PostgresServer, planted_db: str) -> Iterator[psycopg.Connection[object]]:
    """Another session of the database, and a harmless IMMUTABLE `sentinel()` (armed later by `_arm`)."""
    pg_server.execute(
        "CREATE FUNCTION sentinel() RETURNS bool IMMUTABLE LANGUAGE sql AS 'SELECT true'", planted_db
    )
    with psycopg.connect(pg_server.dsn(planted_db), autocommit=True) as conn:
        yield conn


def _arm(server: PostgresServer, database: str, function: str, pid: int) -> None:
    """Turn `function` (harmless while its statements were recorded) into one that terminates `pid`."""
    server.execute(
        f"CREATE OR REPLACE FUNCTION {function} RETURNS bool IMMUTABLE LANGUAGE sql"
        f" AS 'SELECT pg_terminate_backend({pid})'",
        database,
    )


def _alive(conn: psycopg.Connection[object]) -> bool:
    try:
        conn.execute(b"SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def test_a_folded_immutable_function_cannot_terminate_a_backend(
    pg_server: PostgresServer, planted_db: str, bystander: psycopg.Connection[object]
) -> None:
    """`SELECT sentinel()`: the planner would run pg_terminate_backend as the advisor's role (no write, so the
    read-only transaction does not stop it)."""
    _record(
        pg_server,
        planted_db,
        "SELECT 1 WHERE false AND sentinel()",
        "SELECT * FROM victim WHERE owner = 7",
    )
    _arm(pg_server, planted_db, "public.sentinel()", bystander.info.backend_pid)
    result = _advise(pg_server, planted_db)
    assert _alive(bystander), "the advisor's planning terminated another session"
    assert "sentinel" in _reason(result, "sentinel")


def test_a_view_or_a_default_hiding_the_function_is_refused_too(
    pg_server: PostgresServer, planted_db: str, bystander: psycopg.Connection[object]
) -> None:
    pg_server.execute("CREATE VIEW innocent AS SELECT id, sentinel() AS s FROM victim", planted_db)
    pg_server.execute("CREATE VIEW innocent2 AS SELECT * FROM innocent", planted_db)
    pg_server.execute("CREATE TABLE defaulted (id int, s bool DEFAULT sentinel())", planted_db)
    _record(
        pg_server,
        planted_db,
        "SELECT id FROM innocent2 WHERE id = 1 AND false",
        "INSERT INTO defaulted (id) SELECT id FROM victim WHERE false",
    )
    _arm(pg_server, planted_db, "public.sentinel()", bystander.info.backend_pid)
    result = _advise(pg_server, planted_db)
    assert _alive(bystander), "the advisor's planning terminated another session"
    assert "innocent2" in _reason(result, "innocent2")
    assert "defaulted" in _reason(result, "defaulted")


@pytest.mark.parametrize(
    ("setup", "text"),
    [
        (  # a STABLE function is evaluated to estimate a filter's selectivity
            "CREATE FUNCTION pick() RETURNS int STABLE LANGUAGE sql AS 'SELECT 1'",
            "SELECT * FROM victim WHERE owner = pick()",
        ),
        (  # a VOLATILE SQL function is inlined: its body's IMMUTABLE call is folded
            "CREATE FUNCTION wrapper() RETURNS bool VOLATILE LANGUAGE sql AS 'SELECT sentinel()'",
            "SELECT wrapper()",
        ),
        (  # a domain's default, filled in by INSERT ... SELECT
            "CREATE DOMAIN marked AS bool DEFAULT sentinel(); CREATE TABLE stamped (id int, m marked)",
            "INSERT INTO stamped (id) SELECT id FROM victim WHERE false",
        ),
        (  # an index expression's constant part is folded when the planner loads the index
            "CREATE TABLE indexed (id int); CREATE INDEX ON indexed ((id > 0 AND sentinel()))",
            "SELECT * FROM indexed WHERE id = 3",
        ),
        (  # a check constraint (constraint exclusion)
            "CREATE TABLE checked (id int CHECK (sentinel() OR id > 0))",
            "SELECT * FROM checked WHERE id = 3",
        ),
        (  # a built-in STABLE function evaluated to estimate a filter reads every view of the schema
            "CREATE SCHEMA xs; CREATE TABLE xs.notes AS SELECT g::text AS note FROM generate_series(1, 100) g;"
            " ANALYZE xs.notes; CREATE VIEW xs.innocent AS SELECT sentinel();"
            " ALTER DATABASE {db} SET search_path = xs, public",
            "SELECT * FROM notes WHERE note = schema_to_xml(current_schema()::name, pi() >= pi(), pi() > pi(),"
            " current_schema())::text",
        ),
    ],
)
def test_other_ways_to_reach_the_function_are_refused(
    pg_server: PostgresServer, planted_db: str, bystander: psycopg.Connection[object], setup: str, text: str
) -> None:
    pg_server.execute(setup.format(db=planted_db), planted_db)
    _record(pg_server, planted_db, text)
    pg_server.execute(
        "CREATE OR REPLACE FUNCTION public.pick() RETURNS int STABLE LANGUAGE sql"
        f" AS 'SELECT pg_terminate_backend({bystander.info.backend_pid})::int'",
        planted_db,
    )
    _arm(pg_server, planted_db, "public.sentinel()", bystander.info.backend_pid)
    result = _advise(pg_server, planted_db)
    assert _alive(bystander), "the advisor's planning terminated another session"
    assert "planner may run" in _reason(result, text[:20])


def test_a_user_operator_folded_by_the_planner_is_refused(
    pg_server: PostgresServer, planted_db: str, bystander: psycopg.Connection[object]
) -> None:
    pg_server.execute(
        "CREATE FUNCTION opkill(int, int) RETURNS bool IMMUTABLE LANGUAGE sql AS 'SELECT true'",
        planted_db,
    )
    pg_server.execute("CREATE OPERATOR ### (LEFTARG = int, RIGHTARG = int, FUNCTION = opkill)", planted_db)
    _record(pg_server, planted_db, "SELECT 1 WHERE (pi()::int ### pi()::int)")  # pi(): IMMUTABLE, no constant
    _arm(pg_server, planted_db, "public.opkill(int, int)", bystander.info.backend_pid)
    result = _advise(pg_server, planted_db)
    assert _alive(bystander), "the advisor's planning terminated another session"
    assert "###" in _reason(result, "###")


def test_planner_time_sleep_lock_and_read_only_escape_are_contained(
    pg_server: PostgresServer, planted_db: str
) -> None:
    """Were a folded function planned anyway: its sleep ends at the statement timeout (even when it turns the
    timeout off), it cannot turn the transaction read-write, and no advisory lock outlives the run."""
    from responder.advice.plans import PlanFailed, Planner
    from responder.advice.statements import Statement

    async def plan(text: str) -> str | None:
        async with await psycopg.AsyncConnection.connect(pg_server.dsn(planted_db), autocommit=True) as conn:
            try:
                await Planner(conn, statement_timeout=1, lock_timeout=0.5).plan(
                    Statement(1, planted_db, 1, 1, text)
                )
            except PlanFailed as exc:
                return str(exc)
            return None

    for text in ("SELECT nap()", "SELECT untimed_nap()"):
        started = time.monotonic()
        failure = asyncio.run(plan(text))
        assert failure is not None and "statement timeout" in failure, failure
        assert time.monotonic() - started < 10
    failure = asyncio.run(plan("SELECT unlock_and_write()"))
    assert failure is not None
    assert pg_server.execute("SELECT count(*) FROM trail", planted_db) == [(0,)]
    _record(pg_server, planted_db, "SELECT grab()")
    _advise(pg_server, planted_db)
    with psycopg.connect(pg_server.dsn(planted_db), autocommit=True) as other:
        assert other.execute(b"SELECT pg_try_advisory_lock(4242)").fetchone() == (True,)


@pytest.mark.parametrize(
    "text",
    [
        "LOCK TABLE victim IN ACCESS EXCLUSIVE MODE",
        "COPY victim TO STDOUT",
        "COPY (SELECT 1) TO PROGRAM 'touch /tmp/x'",
        "DO $$BEGIN DELETE FROM victim; END$$",
        "SET statement_timeout = 0",
        "CALL p()",
        "EXPLAIN ANALYZE DELETE FROM victim",
        "EXPLAIN (ANALYZE) SELECT 1",
        "SELECT 1 /* ; */ ; DELETE FROM victim",
        "SELECT 1 -- \n; DELETE FROM victim",
        "/* x */ DELETE FROM victim; /* y */ SELECT 1",
        "PREPARE x AS SELECT 1",
        "EXECUTE x",
        "DECLARE c CURSOR FOR SELECT 1",
        "VACUUM victim",
        "CREATE TABLE t AS SELECT 1",
        "SELECT 1 \\; DELETE FROM victim",
        "MERGE INTO victim v USING trail t ON false WHEN NOT MATCHED THEN DO NOTHING",
        "WITH x AS (SELECT 1) INSERT INTO trail VALUES ('a')",
        "SELECT * FROM victim WHERE id = (WITH d AS (DELETE FROM trail RETURNING 1) SELECT 1 FROM d)",
    ],
)
def test_utility_and_hidden_statements_are_refused(text: str) -> None:
    assert refusal(text) is not None


def test_the_recommendation_names_the_table_the_search_path_finds(
    pg_server: PostgresServer, planted_db: str
) -> None:
    """Two `orders` tables; the database's search_path finds app's first: the statement reads app.orders, and
    that is the table advised (schema-qualified), not the public one of the same name."""
    for schema in ("app", "public"):
        pg_server.execute(
            f"CREATE SCHEMA IF NOT EXISTS {schema};"
            f" CREATE TABLE {schema}.orders (id int PRIMARY KEY, customer int NOT NULL);"
            f" INSERT INTO {schema}.orders SELECT g, g % 10000 FROM generate_series(1, 60000) g;"
            f" ANALYZE {schema}.orders",
            planted_db,
        )
    pg_server.execute(f"ALTER DATABASE {planted_db} SET search_path = app, public")
    _record(pg_server, planted_db, *["SELECT * FROM orders WHERE customer = 42"] * 3)
    result = _advise(pg_server, planted_db)
    assert [(r.schema, r.table, r.columns) for r in result.recommendations] == [
        ("app", "orders", ("customer",))
    ]
    assert result.recommendations[0].create_statement.startswith(
        'CREATE INDEX CONCURRENTLY ON "app"."orders"'
    )


def test_identifiers_that_need_quoting_are_recommended_as_valid_sql(
    pg_server: PostgresServer, planted_db: str
) -> None:
    """A schema named "a.b", a table with a quote, a space and upper case, a column in unicode: the recommended
    statement, run as it is, creates the index on that very table and column."""
    pg_server.execute(
        'CREATE SCHEMA "a.b"; CREATE TABLE "a.b"."Order ""Lines" (id int, "Kündé Nr" int NOT NULL);'
        ' INSERT INTO "a.b"."Order ""Lines" SELECT g, g % 10000 FROM generate_series(1, 60000) g;'
        ' ANALYZE "a.b"."Order ""Lines"',
        planted_db,
    )
    _record(pg_server, planted_db, *['SELECT id FROM "a.b"."Order ""Lines" WHERE "Kündé Nr" = 5'] * 3)
    result = _advise(pg_server, planted_db)
    (recommendation,) = result.recommendations
    assert (recommendation.schema, recommendation.table, recommendation.columns) == (
        "a.b",
        'Order "Lines',
        ("Kündé Nr",),
    )
    pg_server.execute(recommendation.create_statement, planted_db)
    rows = pg_server.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
        ' AND a.attnum = i.indkey[0] WHERE i.indrelid = \'"a.b"."Order ""Lines"\'::regclass',
        planted_db,
    )
    assert rows == [("Kündé Nr",)]


def test_a_deeply_nested_statement_does_not_crash_the_run(pg_server: PostgresServer, planted_db: str) -> None:
    """PostgreSQL runs `SELECT 1+1+...` with 4,000 terms (and pg_stat_statements keeps it): the advisor's walk
    of its parse tree must not exceed Python's recursion limit and lose the whole run."""
    deep = "SELECT " + "+".join(["owner"] * 4000) + " FROM victim WHERE id = 1"
    _record(pg_server, planted_db, deep, *["SELECT * FROM victim WHERE owner = 7"] * 3)
    result = _advise(pg_server, planted_db)
    assert result.error is None, result.error
    assert [(r.table, r.columns) for r in result.recommendations] == [("victim", ("owner",))]
    assert any(p.statement.text.startswith("SELECT owner+owner") for p in result.plans) or any(
        n.statement.text.startswith("SELECT owner+owner") for n in result.not_planned
    )


def test_select_for_update_is_planned_without_waiting_for_row_locks(
    pg_server: PostgresServer, planted_db: str
) -> None:
    """Planning takes no row lock: a row held FOR UPDATE (and a table under ROW EXCLUSIVE) by an open
    transaction neither blocks the plan nor is touched by it."""
    _record(pg_server, planted_db, "SELECT * FROM victim WHERE owner = 9 FOR UPDATE")
    holder = psycopg.connect(pg_server.dsn(planted_db))
    try:
        holder.execute(b"SELECT * FROM victim WHERE owner = 9 FOR UPDATE")
        holder.execute(b"UPDATE victim SET note = 'held' WHERE id = 1")
        started = time.monotonic()
        result = _advise(pg_server, planted_db, lock_timeout=0.5)
        assert time.monotonic() - started < 30
        assert any("FOR UPDATE" in p.statement.text for p in result.plans), result.not_planned
    finally:
        holder.rollback()
        holder.close()


def test_a_role_denied_hypopg_keeps_its_plans_and_says_why(
    pg_server: PostgresServer, planted_db: str
) -> None:
    """hypopg's functions revoked from PUBLIC (a cautious DBA), the advisor a pg_monitor role that reads all
    data: the plans and findings stay, the database's error says hypopg was refused, nothing crashes."""
    role = f"advisor_{uuid.uuid4().hex[:6]}"
    pg_server.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw' IN ROLE pg_monitor, pg_read_all_data")
    pg_server.execute("REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC", planted_db)
    _record(pg_server, planted_db, *["SELECT * FROM victim WHERE owner = 7"] * 3)
    dsn = pg_server.dsn(user=role, password="pw")
    advice = asyncio.run(advise(Server("pg", dsn), Settings(), {planted_db}))
    (result,) = advice.databases
    assert result.plans and any(p.findings for p in result.plans)
    assert result.recommendations == []
    error = result.error
    assert error is not None and "hypopg" in error


def test_a_database_that_disappears_is_an_error_of_its_own(
    pg_server: PostgresServer, planted_db: str
) -> None:
    _record(pg_server, planted_db, *["SELECT * FROM victim WHERE owner = 7"] * 3)
    gone = f"gone_{uuid.uuid4().hex[:8]}"
    pg_server.execute(f"CREATE DATABASE {gone}")
    pg_server.execute("CREATE TABLE t (a int)", gone)
    _record(pg_server, gone, "SELECT * FROM t WHERE a = 1")
    pg_server.execute(f"DROP DATABASE {gone}")
    advice = asyncio.run(advise(Server("pg", pg_server.dsn()), Settings(), {planted_db, gone}))
    assert advice.error is None
    results = {d.database: d for d in advice.databases}
    error = results[gone].error
    assert error is not None and "not reachable" in error
    assert [(r.table, r.columns) for r in results[planted_db].recommendations] == [("victim", ("owner",))]


@pytest.fixture
def standby_of(pg_server: PostgresServer, planted_db: str) -> Iterator[PostgresServer]:
    """A hot standby of the test server (after `planted_db` exists), on a slot of its own."""
    slot = f"advise_{uuid.uuid4().hex[:8]}"
    with hot_standby(pg_server, slot, "pgwarden-advise-standby-") as server:
        yield server


def test_on_a_read_only_standby_the_advice_is_the_same(
    pg_server: PostgresServer, planted_db: str, standby_of: PostgresServer
) -> None:
    """A hot standby refuses every write; planning, hypopg's hypothetical indexes and the catalog reads need
    none: the advice of the standby's own statements, and nothing changed on it."""
    _record(standby_of, planted_db, *["SELECT * FROM victim WHERE owner = 7"] * 3)
    advice = asyncio.run(advise(Server("standby", standby_of.dsn()), Settings(), {planted_db}))
    assert advice.error is None, advice.error
    (result,) = advice.databases
    assert result.error is None, result.error
    assert [(r.table, r.columns) for r in result.recommendations] == [("victim", ("owner",))]


def test_a_dollar_number_in_a_literal_or_an_identifier_is_no_placeholder() -> None:
    """PREPARE's EXECUTE gets one NULL per real $n: a '$7' string or a "$9" column must not count."""
    text = """SELECT "$9" FROM victim WHERE note = '$7' AND note <> $$ $8 $$ AND owner = $2 AND id = $1"""
    assert refusal(text) is None
    assert placeholders(text) == 2
