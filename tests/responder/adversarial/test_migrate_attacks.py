"""Adversarial `migrate run`, `lint` and `backfill`, against the real PostgreSQL and tools: a retry after a
failed CONCURRENTLY, two operators with journals of their own, a migration file changed between lint and run, a
folder of migrations reached through a symlink, statements hidden in a DO block or behind psql's meta-commands,
a dry run of a real tool, a target that is a standby, a backfill resumed while its first run is alive or after
it finished, a --where that would reach outside its batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from devtools.pgserver import PostgresServer
from tests.responder.migrate.scenario import (
    BIN,
    Holder,
    MigrationDb,
    Writer,
    journal_rows,
    migrate,
    migration_db,
    release_after,
    write_config,
)
from tests.responder.migrate.test_run_tools import alembic_project
from tests.support.backfill import action_id, backfill_config, items, run_backfill
from tests.support.migrator import as_migrator, make_items, migrator_db
from tests.support.postgres import hot_standby


@pytest.fixture
def db(pg_server: PostgresServer) -> Iterator[MigrationDb]:
    yield from migration_db(pg_server)


def psql(db: MigrationDb, statement: str) -> list[str]:
    return ["psql", db.dsn(), "-v", "ON_ERROR_STOP=1", "-c", statement]


def indexes(db: MigrationDb) -> dict[str, bool]:
    rows = db.execute(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = 't'::regclass"
    )
    return {str(name): bool(valid) for name, valid in rows}


def test_a_retried_concurrently_builds_the_index_it_reports(tmp_path: Path, db: MigrationDb) -> None:
    """Attempt 1's CREATE INDEX CONCURRENTLY times out waiting for a writer's transaction and leaves an INVALID
    index; the retry's IF NOT EXISTS must not take that for the index (and succeed, then have it dropped)."""
    config = write_config(
        tmp_path,
        db,
        lock_timeout="300ms",
        retries={"attempts": 10, "backoff": "300ms", "max_backoff": "300ms"},
    )
    statement = "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_v ON t (v)"
    with Holder(db.dsn(app="writer"), "UPDATE t SET v = v WHERE id = 1") as holder:
        release_after(holder, 2.0)
        code, out = migrate("run", "--config", str(config), "--target", "prod", "--", *psql(db, statement))
    assert code == 0, out
    (row,) = journal_rows(tmp_path)
    assert row["outcome"] == "succeeded"
    assert len(row["result"]["attempts"]) >= 2, "the first attempt never waited: no retry was attacked"
    assert indexes(db) == {"t_pkey": True, "t_v": True}
    attempts = row["result"]["attempts"]
    assert attempts[1]["invalid_indexes_dropped"] == ["public.t_v"]  # attempt 1's leftover, before the retry
    assert row["result"]["after"]["invalid_indexes_dropped"] == []


def _until(check: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def test_two_operators_with_journals_of_their_own_never_run_at_once(tmp_path: Path, db: MigrationDb) -> None:
    """Two CI runners, each with its own SQLite journal: neither journal shows the other's run, so only the
    target can tell them apart; the second is refused while the first runs, and runs once it is done."""
    first_folder, second_folder = tmp_path / "ci-1", tmp_path / "ci-2"
    first_folder.mkdir()
    second_folder.mkdir()
    first_config, second_config = write_config(first_folder, db), write_config(second_folder, db)
    started = tmp_path / "started"
    script = f"touch {started}; sleep 3"
    first: list[tuple[int, str]] = []
    thread = threading.Thread(
        target=lambda: first.append(
            migrate("run", "--config", str(first_config), "--target", "prod", "--", "sh", "-c", script)
        )
    )
    thread.start()
    try:
        _until(started.exists, "the first run's command started")
        marker = tmp_path / "second-ran"
        code, out = migrate(
            "run", "--config", str(second_config), "--target", "prod", "--", "touch", str(marker)
        )
    finally:
        thread.join(timeout=60)
    assert code == 2, out
    assert (
        "refused: another migration is running on this database" in out and "pgwarden-migrate-guard:1" in out
    )
    assert not marker.exists()
    assert first[0][0] == 0, first[0][1]
    (row,) = journal_rows(second_folder)
    assert row["outcome"] == "guardrail"
    # the lock went with the first run's session: the next run goes on
    code, out = migrate("run", "--config", str(second_config), "--target", "prod", "--", "touch", str(marker))
    assert code == 0, out
    assert marker.exists()


def test_a_migration_file_changed_after_its_lint_is_not_run(tmp_path: Path, db: MigrationDb) -> None:
    """Time of check, time of use: the file `--lint` passed is rewritten (another job's checkout) while
    attempt 1 runs and fails; the retry would run a blocking CREATE INDEX the lint never saw."""
    db.execute("ANALYZE t")
    config = write_config(
        tmp_path,
        db,
        lint={"large_table_rows": 10},
        retries={"attempts": 3, "backoff": "0s", "max_backoff": "0s"},
    )
    migration = tmp_path / "migrations" / "001_noop.sql"
    migration.parent.mkdir()
    migration.write_text("SELECT 1;\n")
    once = tmp_path / "once"
    script = (
        f"if [ ! -e {once} ]; then touch {once}; printf 'CREATE INDEX t_v ON t (v);\\n' > {migration}; exit 1; fi;"
        f" psql '{db.dsn()}' -v ON_ERROR_STOP=1 -f {migration}"
    )
    args = ("run", "--config", str(config), "--target", "prod", "--lint", str(migration.parent))
    code, out = migrate(*args, "--", "sh", "-c", script)
    assert code == 1, out
    assert indexes(db) == {"t_pkey": True}
    (row,) = journal_rows(tmp_path)
    assert row["outcome"] == "failed"
    assert f"not running attempt 2: changed since the lint: {migration}" in row["error"]
    assert [a["exit_code"] for a in row["result"]["attempts"]] == [1]
    # linted as it is now, it is refused before anything runs
    code, out = migrate(*args, "--", "psql", db.dsn(), "-v", "ON_ERROR_STOP=1", "-f", str(migration))
    assert code == 2 and "refused: lint found 1 error(s)" in out, out
    assert indexes(db) == {"t_pkey": True}


def test_a_folder_of_migrations_reached_through_a_symlink_is_linted(tmp_path: Path, db: MigrationDb) -> None:
    """Prisma's layout, one migration's folder a symlink to elsewhere (and a symlink loop beside it): what the
    tool runs through the link is linted, and refused, like a file in the folder."""
    db.execute("ANALYZE t")
    config = write_config(tmp_path, db, lint={"large_table_rows": 10})
    migrations, elsewhere = tmp_path / "migrations", tmp_path / "elsewhere"
    (migrations / "001_ok").mkdir(parents=True)
    (migrations / "001_ok" / "migration.sql").write_text("SELECT 1;\n")
    elsewhere.mkdir()
    (elsewhere / "migration.sql").write_text("CREATE INDEX t_v ON t (v);\n")
    (migrations / "002_more").symlink_to(elsewhere, target_is_directory=True)
    (migrations / "loop").symlink_to(migrations, target_is_directory=True)
    linked = migrations / "002_more" / "migration.sql"
    argv = ["psql", db.dsn(), "-v", "ON_ERROR_STOP=1", "-f", str(linked)]
    code, out = migrate(
        "run", "--config", str(config), "--target", "prod", "--lint", str(migrations), "--", *argv
    )
    assert code == 2, out
    assert f"{linked}:1: error " in out and "refused: lint found 1 error(s)" in out
    assert indexes(db) == {"t_pkey": True}
    code, out = migrate("lint", "--config", str(config), "--target", "prod", str(migrations))
    assert code == 2 and f"{linked}:1: error " in out, out
    assert out.count(": error ") == 1  # found once: not again through the loop


def test_a_standby_target_is_refused_before_anything(
    tmp_path: Path, pg_server: PostgresServer, db: MigrationDb
) -> None:
    """A target that is a hot standby (its DSN pointed at a replica by mistake): `run` and `backfill` refuse
    (exit 2, journaled guardrail), in enforce and dry-run alike, before the command or a batch."""
    with migrator_db(pg_server) as name:
        make_items(pg_server, name, 100)
        with hot_standby(pg_server, f"mig_{uuid.uuid4().hex[:8]}", "pgwarden-mig-standby-") as standby:
            on_standby = MigrationDb(standby, db.name, db.owner, db.guard)
            config = write_config(tmp_path, on_standby, retries={"attempts": 1})
            marker = tmp_path / "ran"
            for dry_run in ([], ["--dry-run"]):
                argv = ["--", "touch", str(marker)]
                code, out = migrate("run", "--config", str(config), "--target", "prod", *dry_run, *argv)
                assert code == 2, out
                assert (
                    "refused: the target is a standby (in recovery): a migration runs on its primary" in out
                )
            assert not marker.exists()
            assert [r["outcome"] for r in journal_rows(tmp_path)] == ["guardrail", "guardrail"]
            folder = tmp_path / "backfill"
            folder.mkdir()
            backfill = backfill_config(folder, standby, name)
            for dry_run in ([], ["--dry-run"]):
                code, out = run_backfill(backfill, *items(), *dry_run)
                assert code == 2, out
                assert "refused: the target is a standby (in recovery): a backfill runs on its primary" in out
        assert as_migrator(pg_server, name, "SELECT count(*) FROM public.items WHERE n <> 0") == [(0,)]
        assert as_migrator(pg_server, name, "SELECT to_regclass('pgwarden.backfill_progress')") == [(None,)]


# A migration run by psql that hides a blocking CREATE INDEX on the large `t` (or a shell command) from a
# reader: each must be refused by `--lint` before psql runs it.
HIDDEN = {
    "do-block": "DO $$ BEGIN IF true THEN CREATE INDEX t_v ON t (v); END IF; END $$;\n",
    "do-block-language": "DO LANGUAGE plpgsql $body$ BEGIN CREATE INDEX t_v ON t (v); END $body$;\n",
    "shell-escape": "SELECT 1;\n\\! touch {pwned}\n",
    "include": "SELECT 1;\n\\i {other}\n",
    "include-relative": "\\ir ../other.sql\n",
    "gexec": "SELECT 'CREATE INDEX t_v ON t (v)' \\gexec\n",
    "backslash-semicolon": "SELECT 1 \\; CREATE INDEX t_v ON t (v);\n",
    "psql-variable": "\\set cmd 'CREATE INDEX t_v ON t (v)'\n:cmd;\n",
    "nested-comment": "/* outer /* inner */ still a comment */ CREATE INDEX t_v ON t (v);\n",
    "dollar-quote": "SELECT $a$ $$; $a$; CREATE INDEX t_v ON t (v);\n",
    "comment-then-statement": "SELECT 1; -- harmless\nCREATE INDEX t_v ON t (v);\n",
}


@pytest.mark.parametrize("sql", HIDDEN.values(), ids=HIDDEN.keys())
def test_a_statement_hidden_from_a_reader_is_refused_by_the_lint(
    tmp_path: Path, db: MigrationDb, sql: str
) -> None:
    db.execute("ANALYZE t")
    config = write_config(tmp_path, db, lint={"large_table_rows": 10}, retries={"attempts": 1})
    pwned, folder = tmp_path / "pwned", tmp_path / "migrations"
    folder.mkdir()
    other = tmp_path / "other.sql"  # outside the linted folder: only psql's \i would read it
    other.write_text("CREATE INDEX t_v ON t (v);\n")
    migration = folder / "001_hidden.sql"
    migration.write_text(sql.format(pwned=pwned, other=other))
    argv = ["psql", db.dsn(), "-v", "ON_ERROR_STOP=1", "-f", str(migration)]
    code, out = migrate(
        "run", "--config", str(config), "--target", "prod", "--lint", str(folder), "--", *argv
    )
    assert code == 2, out
    assert f"{migration}:" in out and "refused: lint found" in out
    assert not pwned.exists()
    assert indexes(db) == {"t_pkey": True}


def test_a_do_block_that_builds_its_sql_is_a_warning_lint_cannot_see_through(
    tmp_path: Path, db: MigrationDb
) -> None:
    config = write_config(tmp_path, db, lint={"large_table_rows": 10})
    migration = tmp_path / "001_dynamic.sql"
    migration.write_text("DO $$ BEGIN EXECUTE 'CREATE INDEX t_v ' || 'ON t (v)'; END $$;\n")
    code, out = migrate("lint", "--config", str(config), "--target", "prod", str(migration))
    assert f"{migration}:1: warning hidden-sql: a DO block EXECUTEs SQL built at run time" in out, out
    assert code == 0


def test_a_dry_run_never_calls_the_real_tool(
    tmp_path: Path, db: MigrationDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dbmate and Alembic, each with a migration that would create a table: a dry run creates nothing, not even
    the tool's history table."""
    migrations = tmp_path / "db" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "20260101000000_made.sql").write_text(
        "-- migrate:up\nCREATE TABLE made (x int);\n-- migrate:down\nDROP TABLE made;\n"
    )
    ini = alembic_project(tmp_path, "CREATE TABLE made_by_alembic (x int)")
    monkeypatch.setenv("DATABASE_URL", db.dsn().replace("postgresql://", "postgresql+psycopg://"))
    config = write_config(tmp_path, db)
    url = db.dsn() + "?sslmode=disable"
    dbmate = [
        str(BIN / "dbmate"),
        "--url",
        url,
        "--migrations-dir",
        str(migrations),
        "--no-dump-schema",
        "up",
    ]
    alembic = [str(BIN / "alembic"), "-c", str(ini), "upgrade", "head"]
    for argv in (dbmate, alembic):
        code, out = migrate("run", "--config", str(config), "--target", "prod", "--dry-run", "--", *argv)
        assert code == 0, out
    tables = db.execute(
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
    )
    assert tables == [("t",)]
    assert [r["outcome"] for r in journal_rows(tmp_path)] == ["dry_run", "dry_run"]
    for argv in (dbmate, alembic):  # the same commands, run: each migration does create its table
        code, out = migrate("run", "--config", str(config), "--target", "prod", "--", *argv)
        assert code == 0, out
    made = db.execute("SELECT count(*) FROM pg_class WHERE relname IN ('made', 'made_by_alembic')")
    assert made == [(2,)]


def behind_a_long_read(tmp_path: Path, db: MigrationDb, argv: list[str]) -> tuple[int, str, Writer]:
    """`migrate run -- ARGV` (the watchdog at 500 ms, lock_timeout far away, quick retries) while a long read
    holds `t` for 3 s and a writer updates it: the exit code, the output, the writer."""
    retries = {"attempts": 20, "backoff": "300ms", "max_backoff": "300ms"}
    config = write_config(
        tmp_path, db, lock_timeout="60s", watchdog={"blocked_after": "500ms"}, retries=retries
    )
    with (
        Holder(db.dsn(app="long-report"), "SELECT count(*) FROM t") as holder,
        Writer(db.dsn(app="writer")) as writer,
    ):
        release_after(holder, 3.0)
        code, out = migrate("run", "--config", str(config), "--target", "prod", "--", *argv)
    return code, out, writer


# pg_dump's header, pasted into a migration: the file turns the PGOPTIONS timeouts off for its session.
NO_TIMEOUTS = "SET statement_timeout = 0;\nSET lock_timeout = 0;\n"
ADD_COLUMN = "ALTER TABLE t ADD COLUMN note text;\n"


def test_a_migration_that_turns_its_timeouts_off_is_still_cancelled_by_the_watchdog(
    tmp_path: Path, db: MigrationDb
) -> None:
    """The ALTER queues behind a long read, the application's writes queue behind the ALTER; with no lock or
    statement timeout left, the watchdog is what lets the writes through: it cancels the ALTER, retries, and
    the column is added once the read is done."""
    migration = tmp_path / "001_note.sql"
    migration.write_text(NO_TIMEOUTS + ADD_COLUMN)
    argv = ["psql", db.dsn(), "-v", "ON_ERROR_STOP=1", "-f", str(migration)]
    code, out, writer = behind_a_long_read(tmp_path, db, argv)
    assert code == 0, out
    (row,) = journal_rows(tmp_path)
    cancels = [c for a in row["result"]["attempts"] for c in a["cancels"]]
    assert cancels and {w["application"] for c in cancels for w in c["blocked"]} == {"writer"}
    assert not writer.errors
    assert "note" in [
        r[0] for r in db.execute("SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass")
    ]


@pytest.mark.parametrize(
    "rename",
    ["SET application_name = 'innocent';\n", "SELECT set_config('application_name', 'innocent', false);\n"],
    ids=["set", "set_config"],
)
def test_a_migration_that_renames_its_session_out_of_the_watchdogs_sight_is_refused_by_the_lint(
    tmp_path: Path, db: MigrationDb, rename: str
) -> None:
    """The watchdog finds the migration's sessions by PGAPPNAME; a file that renames its session (and turns its
    timeouts off) would queue the application's writes behind its ALTER for as long as the long read lasts."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    migration = folder / "001_note.sql"
    migration.write_text(NO_TIMEOUTS + rename + ADD_COLUMN)
    config = write_config(tmp_path, db, retries={"attempts": 1})
    argv = ["psql", db.dsn(), "-v", "ON_ERROR_STOP=1", "-f", str(migration)]
    code, out = migrate(
        "run", "--config", str(config), "--target", "prod", "--lint", str(folder), "--", *argv
    )
    assert code == 2, out
    assert f"{migration}:3: error application-name: " in out
    assert "note" not in [
        r[0] for r in db.execute("SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass")
    ]


@pytest.fixture
def items_db(pg_server: PostgresServer) -> Iterator[str]:
    with migrator_db(pg_server) as name:
        make_items(pg_server, name, 500)
        yield name


def test_a_backfill_resumed_while_its_first_run_is_alive_is_refused(
    tmp_path: Path, pg_server: PostgresServer, items_db: str
) -> None:
    """A second operator `--resume`s a backfill whose first run is alive (slow: a pause between batches):
    refused once the wait for a stale heartbeat is over; the first run ends, every row updated exactly once,
    and resuming the finished backfill is refused too."""
    config = backfill_config(tmp_path, pg_server, items_db, migrations={"backfill": {"pause": "400ms"}})
    first: list[tuple[int, str]] = []
    thread = threading.Thread(target=lambda: first.append(run_backfill(config, *items(batch_size=20))))
    thread.start()
    try:
        _until(
            lambda: bool(as_migrator(pg_server, items_db, "SELECT 1 FROM public.items WHERE n = 1 LIMIT 1")),
            "the first run's first batch",
        )
        ident = 1  # the first row of this test's fresh journal (checked below)
        code, out = run_backfill(config, "--resume", str(ident))
        busy = as_migrator(pg_server, items_db, "SELECT finished FROM pgwarden.backfill_progress")
    finally:
        thread.join(timeout=120)
    assert code == 2, out
    assert f"refused: backfill {ident} is being run by a live process" in out
    assert busy == [(False,)]  # the refusal came while the first run was still walking
    assert first[0][0] == 0, first[0][1]
    assert action_id(first[0][1]) == ident
    assert as_migrator(pg_server, items_db, "SELECT n, count(*) FROM public.items GROUP BY n") == [(1, 500)]
    code, out = run_backfill(config, "--resume", str(ident))
    assert code == 2 and f"backfill {ident} is finished" in out, out
    assert as_migrator(pg_server, items_db, "SELECT n, count(*) FROM public.items GROUP BY n") == [(1, 500)]


def test_a_where_with_or_never_reaches_outside_its_batch(
    tmp_path: Path, pg_server: PostgresServer, items_db: str
) -> None:
    """`--where "a OR b"` is one condition ANDed with the batch's key range, never `range AND a OR b`: every
    batch updates only its own keys (so each row once), and only the rows the condition selects."""
    config = backfill_config(tmp_path, pg_server, items_db)
    where = "n = 5 OR id % 2 = 0"  # unbracketed, `range AND n = 5 OR id % 2 = 0`: every even row, each batch
    code, out = run_backfill(config, *items(batch_size=25), "--where", where)
    assert code == 0, out
    counts = as_migrator(
        pg_server, items_db, "SELECT id % 2, n, count(*) FROM public.items GROUP BY 1, 2 ORDER BY 1"
    )
    assert counts == [(0, 1, 250), (1, 0, 250)]
    assert as_migrator(pg_server, items_db, "SELECT rows_done, batches FROM pgwarden.backfill_progress") == [
        (250, 20)
    ]


ROOT = Path(__file__).resolve().parents[3]


def test_the_orphaned_command_of_a_killed_run_blocks_the_next_run(tmp_path: Path, db: MigrationDb) -> None:
    """`migrate run` SIGKILLed (an OOM kill, `kill -9`) mid-migration: its command is not killed with it and
    goes on. Once the dead run's heartbeat is stale its journal row is no longer running, and its migration
    lock went with its session; the next run must still refuse while the orphan's session (named after the
    dead run) is active, and run once it is gone."""
    config = write_config(tmp_path, db)
    slow = "SELECT pg_sleep(6)"
    program = (
        "import sys; from responder.migrate import cli; "
        f"sys.exit(cli.main(['migrate', 'run', '--config', {str(config)!r}, '--target', 'prod', '--',"
        f" 'psql', {db.dsn()!r}, '-c', {slow!r}]))"
    )
    proc = subprocess.Popen([sys.executable, "-c", program], cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        _until(lambda: orphans(db) == 1, "the first run's psql session")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        time.sleep(2.5)  # replica_timeout (2s): the dead run's heartbeat is stale
        marker = tmp_path / "ran"
        code, out = migrate("run", "--config", str(config), "--target", "prod", "--", "touch", str(marker))
        assert orphans(db) == 1, "the orphan ended before the second run was attacked"
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 2, out
    assert "refused: a session of migration 1 is still active: pid " in out
    assert not marker.exists()
    _until(lambda: orphans(db) == 0, "the orphan's end")
    code, out = migrate("run", "--config", str(config), "--target", "prod", "--", "touch", str(marker))
    assert code == 0, out
    assert [r["outcome"] for r in journal_rows(tmp_path)] == ["interrupted", "guardrail", "succeeded"]


def orphans(db: MigrationDb) -> int:
    rows = db.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgwarden-migrate:1'")
    return int(rows[0][0])


def test_a_dbmate_migration_cancelled_mid_way_is_applied_exactly_once(
    tmp_path: Path, db: MigrationDb
) -> None:
    """The watchdog cancels dbmate's ALTER after the migration's INSERT ran in the same transaction: the retry
    must not insert twice (dbmate's transaction rolled the INSERT back with its history row)."""
    with psycopg.connect(db.dsn(), autocommit=True) as conn:  # the migration role's
        conn.execute("CREATE TABLE applied (n int)")
    migrations = tmp_path / "db" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "20260101000000_note.sql").write_text(
        "-- migrate:up\nINSERT INTO applied VALUES (1);\nALTER TABLE t ADD COLUMN note text;\n"
        "-- migrate:down\nALTER TABLE t DROP COLUMN note;\n"
    )
    url = db.dsn() + "?sslmode=disable"
    argv = [str(BIN / "dbmate"), "--url", url, "--migrations-dir", str(migrations), "--no-dump-schema", "up"]
    code, out, writer = behind_a_long_read(tmp_path, db, argv)
    assert code == 0, out
    (row,) = journal_rows(tmp_path)
    attempts = row["result"]["attempts"]
    assert len(attempts) >= 2 and any(a["cancels"] for a in attempts), "no attempt was cancelled mid-way"
    assert db.execute("SELECT count(*) FROM applied") == [(1,)]
    assert db.execute("SELECT version FROM schema_migrations") == [("20260101000000",)]
    assert not writer.errors
    config = tmp_path / "responder.yml"
    code, out = migrate("run", "--config", str(config), "--target", "prod", "--", *argv)  # nothing re-applied
    assert code == 0, out
    assert db.execute("SELECT count(*) FROM applied") == [(1,)]


def test_a_backfill_of_the_backfills_own_progress_is_refused(
    tmp_path: Path, pg_server: PostgresServer, items_db: str
) -> None:
    """Backfilling `pgwarden.backfill_progress` (`last_key = NULL`) would send every other backfill's
    `--resume` back to its first key, updating its rows twice: refused before anything runs."""
    config = backfill_config(tmp_path, pg_server, items_db)
    code, out = run_backfill(config, *items(batch_size=100))
    assert code == 0, out
    before = as_migrator(
        pg_server, items_db, "SELECT key, last_key, rows_done FROM pgwarden.backfill_progress"
    )
    for table in ("pgwarden.backfill_progress", '"pgwarden"."backfill_progress"'):
        code, out = run_backfill(config, *items("last_key = NULL", table=table))
        assert code == 2 and "refused: --table: the pgwarden schema is the backfills' own progress" in out, (
            out
        )
    after = as_migrator(
        pg_server, items_db, "SELECT key, last_key, rows_done FROM pgwarden.backfill_progress"
    )
    assert after == before and before[0][1] is not None


def test_the_invalid_index_of_a_hostile_name_is_dropped_by_name_before_the_retry(
    tmp_path: Path, db: MigrationDb
) -> None:
    """A unique CONCURRENTLY that fails on every attempt (duplicates), its index named like SQL: each leftover
    is dropped as a quoted identifier (before the retry, then after the last attempt), nothing else."""
    db.execute("UPDATE t SET v = 1 WHERE id <= 2")
    name = 'i"dx; DROP TABLE t; --'
    quoted_name = '"' + name.replace('"', '""') + '"'
    statement = f"CREATE UNIQUE INDEX CONCURRENTLY {quoted_name} ON t (v)"
    config = write_config(tmp_path, db, retries={"attempts": 2, "backoff": "0s", "max_backoff": "0s"})
    code, out = migrate("run", "--config", str(config), "--target", "prod", "--", *psql(db, statement))
    assert code == 1, out
    assert indexes(db) == {"t_pkey": True}  # and `t` is still there
    (row,) = journal_rows(tmp_path)
    assert row["result"]["attempts"][1]["invalid_indexes_dropped"] == [f"public.{name}"]
    assert row["result"]["after"]["invalid_indexes_dropped"] == [f"public.{name}"]
