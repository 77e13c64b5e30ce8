"""`migrate backfill` given hostile input: names that are not SQL-safe stay names; SQL smuggled into --table,
--set or --where is refused before anything runs (exit 2) and changes nothing; tables it cannot walk exactly
once are refused; a batch stuck behind the application's lock is rolled back, and resumed later, once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devtools.pgserver import PostgresServer
from tests.support.backfill import action_id, backfill_config, items, run_backfill
from tests.support.journal import journal_sql
from tests.support.migrator import MIGRATOR, MIGRATOR_PASSWORD, as_migrator, make_items, migrator_db, quoted

SCHEMA = 'we.ird "s"'
TABLE = 'ta ble"; DROP TABLE public.keepme; --'
COLUMN = 'co"l umn'


@pytest.fixture
def db(pg_server: PostgresServer) -> Iterator[str]:
    with migrator_db(pg_server) as name:
        make_items(pg_server, name, 500)
        as_migrator(pg_server, name, "CREATE TABLE public.keepme (id int PRIMARY KEY)")
        as_migrator(pg_server, name, "INSERT INTO public.keepme SELECT generate_series(1, 10)")
        yield name


def _untouched(server: PostgresServer, db: str) -> None:
    assert as_migrator(server, db, "SELECT count(*) FROM public.keepme") == [(10,)]
    assert as_migrator(server, db, "SELECT count(*) FROM public.items WHERE n <> 0") == [(0,)]


def test_hostile_names_are_names(pg_server: PostgresServer, db: str, tmp_path: Path) -> None:
    table = f"{quoted(SCHEMA)}.{quoted(TABLE)}"
    as_migrator(pg_server, db, f"CREATE SCHEMA {quoted(SCHEMA)}")
    as_migrator(
        pg_server, db, f"CREATE TABLE {table} ({quoted('i d')} int PRIMARY KEY, {quoted(COLUMN)} int)"
    )
    as_migrator(pg_server, db, f"INSERT INTO {table} SELECT g, 0 FROM generate_series(1, 250) g")
    config = backfill_config(tmp_path, pg_server, db)
    assignment = f"{quoted(COLUMN)} = {quoted(COLUMN)} + 1"
    code, out = run_backfill(config, "--target", "production", "--table", table, "--set", assignment)
    assert code == 0, out
    assert as_migrator(pg_server, db, f"SELECT {quoted(COLUMN)}, count(*) FROM {table} GROUP BY 1") == [
        (1, 250)
    ]
    assert as_migrator(pg_server, db, "SELECT count(*) FROM public.keepme") == [(10,)]


# flag -> (value, what the refusal says): SQL smuggled into each of the three arguments
SMUGGLED = {
    "--where": [
        ("true; DROP TABLE public.keepme", "';'"),
        ("true) OR (true", "not valid SQL"),
        ("true GROUP BY 1", "more than one expression"),
        ("EXISTS (WITH d AS (DELETE FROM public.keepme RETURNING 1) SELECT 1 FROM d)", "DeleteStmt"),
        ("", "empty"),
    ],
    "--set": [
        ("n = 1; DROP TABLE public.keepme", "';'"),
        ("n = 1 WHERE id > 0", "more than one expression"),
        ("n = 1, id = 2", "one column"),
        ("n = 1 FROM public.keepme", "more than one expression"),
        ("n = 1 RETURNING (SELECT 1)", "more than one expression"),
        ("n[1] = 1", "whole column"),
    ],
    "--table": [
        ("public.items; DROP TABLE public.keepme", "';'"),
        ("public.items, public.keepme", "one table"),
        ("public.items AS x", "more than one expression"),
        ("db.public.items", "schema.table"),
        ("(SELECT 1) x", "one table"),
    ],
}


@pytest.mark.parametrize(
    ("flag", "value", "why"), [(flag, value, why) for flag, cases in SMUGGLED.items() for value, why in cases]
)
def test_smuggled_sql_is_refused_before_anything_runs(
    pg_server: PostgresServer, db: str, tmp_path: Path, flag: str, value: str, why: str
) -> None:
    config = backfill_config(tmp_path, pg_server, db)
    args = {"--table": "public.items", "--set": "n = n + 1", "--where": "true"}
    args[flag] = value
    code, out = run_backfill(config, "--target", "production", *(x for kv in args.items() for x in kv))
    assert code == 2, out
    assert out.startswith("refused: ") and why in out, out
    _untouched(pg_server, db)
    assert journal_sql(f"sqlite:///{tmp_path / 'journal.db'}", "SELECT count(*) FROM pgwarden_actions") == [
        (0,)
    ]


@pytest.mark.parametrize(
    ("ddl", "table", "assignment", "why"),
    [
        (
            "CREATE TABLE public.pair (a int, b int, n int, PRIMARY KEY (a, b))",
            "public.pair",
            "n = 1",
            "composite",
        ),
        ("CREATE TABLE public.heap (a int, n int)", "public.heap", "n = 1", "no primary key"),
        ("CREATE VIEW public.shown AS SELECT 1 AS id", "public.shown", "id = 1", "no table"),
        ("SELECT 1", "public.items", "id = id + 1", "primary key id"),
        ("SELECT 1", "public.absent", "n = 1", "no table public.absent"),
    ],
)
def test_tables_it_cannot_walk_once_are_refused(
    pg_server: PostgresServer, db: str, tmp_path: Path, ddl: str, table: str, assignment: str, why: str
) -> None:
    as_migrator(pg_server, db, ddl)
    config = backfill_config(tmp_path, pg_server, db)
    code, out = run_backfill(config, "--target", "production", "--table", table, "--set", assignment)
    assert code == 2 and why in out, out
    _untouched(pg_server, db)
    ((outcome, error),) = journal_sql(
        f"sqlite:///{tmp_path / 'journal.db'}", "SELECT outcome, error FROM pgwarden_actions"
    )
    assert outcome == "guardrail" and why in error


def test_a_batch_behind_the_application_lock_rolls_back_and_resumes_once(
    pg_server: PostgresServer, db: str, tmp_path: Path
) -> None:
    config = backfill_config(
        tmp_path,
        pg_server,
        db,
        migrations={"lock_timeout": "0.2s", "retries": {"attempts": 2, "backoff": "0.1s"}},
    )
    dsn = pg_server.dsn(db, user=MIGRATOR, password=MIGRATOR_PASSWORD)
    with psycopg.connect(dsn) as app:  # the application holds id 300 (the 100th key: the second batch)
        app.execute("UPDATE public.items SET n = n WHERE id = 300")
        code, out = run_backfill(config, *items(batch_size=50))
        assert code == 1, out
        assert out.count("batch rolled back") == 1 and "failed 2 times" in out
        assert as_migrator(pg_server, db, "SELECT count(*) FROM public.items WHERE n = 1") == [(50,)]
        app.rollback()
    code, out = run_backfill(config, "--resume", str(action_id(out)))
    assert code == 0, out
    assert as_migrator(pg_server, db, "SELECT n, count(*) FROM public.items GROUP BY n") == [(1, 500)]


def test_a_batch_the_application_waits_behind_is_cancelled_and_tried_again(
    pg_server: PostgresServer, db: str, tmp_path: Path
) -> None:
    """The batch sleeps 30 s on id 300 (until the flag is set) after locking id 3; the application's write of
    id 3 waits behind it: after `blocked_after` the batch is cancelled, the write goes through, the batch is
    tried again and every row is updated once."""
    as_migrator(pg_server, db, "CREATE TABLE public.flag (done int)")
    config = backfill_config(
        tmp_path,
        pg_server,
        db,
        migrations={"watchdog": {"blocked_after": "0.5s"}, "retries": {"attempts": 3, "backoff": "0.1s"}},
    )
    dsn = pg_server.dsn(db, user=MIGRATOR, password=MIGRATOR_PASSWORD)
    waited: list[float] = []

    def application() -> None:
        with psycopg.connect(dsn, autocommit=True) as app:
            while not app.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'pgwarden-backfill:%%'"
                " AND query LIKE 'UPDATE \"public\".\"items\"%%' AND state = 'active'"
            ).fetchall():
                time.sleep(0.05)
            started = time.monotonic()
            app.execute("UPDATE public.items SET n = n WHERE id = 3")
            waited.append(time.monotonic() - started)
            app.execute("INSERT INTO public.flag VALUES (1)")

    writer = threading.Thread(target=application)
    writer.start()
    slow = "n + 1 + coalesce((SELECT 0 FROM pg_sleep(30) WHERE id = 300 AND NOT EXISTS (SELECT FROM public.flag)), 0)"
    code, out = run_backfill(config, *items(f"n = {slow}", batch_size=500))
    writer.join(timeout=60)
    assert code == 0, out
    assert "waited" in out and "cancelling it" in out and out.count("batch rolled back") == 1, out
    assert waited and waited[0] < 15, waited  # not the 30 s the batch would have held it
    assert as_migrator(pg_server, db, "SELECT n, count(*) FROM public.items GROUP BY n") == [(1, 500)]
