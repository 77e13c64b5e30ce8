"""`migrate run`'s guard against the test PostgreSQL: the lock queue (an ALTER TABLE behind a long transaction,
writers behind it) cancelled by the watchdog and retried until the transaction ends; a failed CONCURRENTLY's
invalid index dropped; the pre-flight's refusals. Durations here bound the tests; the stall figures are the
benchmark's (bench/migrate.py), never asserted."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from responder.config import load_config
from responder.journal import Journal, open_store
from responder.migrate.preflight import Replica, Session, refusals
from responder.migrate.run import Request, open_row
from responder.migrate.settings import PreflightSettings
from responder.playbooks import default_registry
from responder.ui.timeline import headline
from tests.responder.migrate.scenario import (
    PASSWORD,
    Holder,
    MigrationDb,
    Writer,
    journal_rows,
    migrate,
    release_after,
    write_config,
)

ROOT = Path(__file__).resolve().parents[3]
ADD_COLUMN = "ALTER TABLE t ADD COLUMN note text"


def psql(db: MigrationDb, statement: str) -> list[str]:
    return ["psql", db.dsn(), "-v", "ON_ERROR_STOP=1", "-c", statement]


def columns(db: MigrationDb) -> list[str]:
    rows = db.execute("SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0")
    return [str(r[0]) for r in rows]


def _until(check: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    """Wait (bounded) for a state of the server, not for a duration."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def _waiting(db: MigrationDb, application: str) -> list[tuple[int, list[int]]]:
    """The sessions of `application` waiting for a lock, each with the pids it waits behind."""
    rows = db.execute(
        "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity"
        f" WHERE application_name = '{application}' AND wait_event_type = 'Lock'"
    )
    return [(int(pid), list(blockers)) for pid, blockers in rows]


def test_naked_the_alter_queues_the_applications_writes_behind_the_long_transaction(db: MigrationDb) -> None:
    """The outage `migrate run` exists for, shown without it: the ALTER waits for the long transaction's lock,
    and every write of the application queues behind the ALTER for as long as that transaction lives (the
    bench, bench/migrate.py, measures the stall against the guarded run's)."""
    with Holder(db.dsn(app="long-report"), "SELECT count(*) FROM t") as holder:
        env = {**os.environ, "PGAPPNAME": "naked-alter"}
        alter = subprocess.Popen(
            psql(db, ADD_COLUMN), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            _until(lambda: len(_waiting(db, "naked-alter")) == 1, "the ALTER waits for the report's lock")
            ((alter_pid, _),) = _waiting(db, "naked-alter")
            with Writer(db.dsn(app="writer")) as writer:
                _until(lambda: bool(_waiting(db, "writer")), "the writer queues")
                ((_, blockers),) = _waiting(db, "writer")
                assert alter_pid in blockers  # behind the ALTER, not behind the report: the lock queue
                written = len(writer.latencies)
                time.sleep(0.5)
                assert len(writer.latencies) == written  # nothing gets through while the report lives
                holder.release()
                assert alter.wait(timeout=30) == 0
                _until(lambda: len(writer.latencies) > written, "the writes go on once the ALTER is done")
        finally:
            if alter.poll() is None:
                alter.kill()
    assert "note" in columns(db) and not writer.errors


def patient(tmp_path: Path, db: MigrationDb, lock_timeout: str, blocked_after: str, backoff: str) -> Path:
    """A config that retries 20 times, `backoff` apart (at most twice that): until the long transaction ends."""
    max_backoff = f"{2 * int(backoff.removesuffix('ms'))}ms"
    retries = {"attempts": 20, "backoff": backoff, "max_backoff": max_backoff}
    return write_config(
        tmp_path, db, lock_timeout=lock_timeout, watchdog={"blocked_after": blocked_after}, retries=retries
    )


def test_the_watchdog_cancels_the_queued_alter_and_retries_until_the_transaction_ends(
    tmp_path: Path, db: MigrationDb
) -> None:
    # lock_timeout far away: the watchdog, not PGOPTIONS, is what lets the writes through here
    config = patient(tmp_path, db, lock_timeout="60s", blocked_after="500ms", backoff="500ms")
    with (
        Holder(db.dsn(app="long-report"), "SELECT count(*) FROM t") as holder,
        Writer(db.dsn(app="writer")) as writer,
    ):
        release_after(holder, 4.0)
        code, out = migrate("run", "--config", str(config), "--target", "prod", "--", *psql(db, ADD_COLUMN))
    assert code == 0, out
    assert "note" in columns(db)
    (row,) = journal_rows(tmp_path)
    assert row["outcome"] == "succeeded"
    attempts = row["result"]["attempts"]
    assert len(attempts) >= 2 and attempts[-1]["exit_code"] == 0
    assert all(a["exit_code"] != 0 for a in attempts[:-1])
    cancels = [c for a in attempts for c in a["cancels"]]
    assert cancels, "the watchdog cancelled nothing"
    assert {w["application"] for c in cancels for w in c["blocked"]} == {"writer"}
    assert all(w["waited"] > 0.5 for c in cancels for w in c["blocked"])
    effects = [e for e in row["plan"]["effects"] if e["kind"] == "postgres"]
    signals = [e for e in effects if "pg_cancel_backend" in e["statement"]]
    assert len(signals) == len(cancels) and all(e["state"] == "done" for e in signals)
    assert not writer.errors
    told = headline({**row, "action": "migrate"})
    assert told.startswith(f"applied `psql postgresql://{db.owner}:***@") and PASSWORD not in told
    assert f"` on prod in {len(attempts)} attempt(s); cancelled {len(cancels)} time(s)" in told


def test_lock_timeout_from_pgoptions_fails_the_attempt_and_it_is_retried(
    tmp_path: Path, db: MigrationDb
) -> None:
    config = patient(tmp_path, db, lock_timeout="300ms", blocked_after="30s", backoff="300ms")
    with Holder(db.dsn(app="long-report"), "SELECT count(*) FROM t") as holder:
        release_after(holder, 2.0)
        code, out = migrate("run", "--config", str(config), "--target", "prod", "--", *psql(db, ADD_COLUMN))
    assert code == 0, out
    (row,) = journal_rows(tmp_path)
    attempts = row["result"]["attempts"]
    assert len(attempts) >= 2 and not any(a["cancels"] for a in attempts)
    assert "note" in columns(db)


def test_a_failed_concurrently_leaves_no_invalid_index(tmp_path: Path, db: MigrationDb) -> None:
    db.execute("UPDATE t SET v = 1 WHERE id <= 2")  # a duplicate: the unique index build fails
    # an invalid index from before the run is not the migration's: left alone
    db.execute("CREATE TABLE old (v int); INSERT INTO old VALUES (1), (1)")
    with pytest.raises(Exception, match="could not create unique index"):
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY old_v_key ON old (v)")
    config = write_config(tmp_path, db, retries={"attempts": 1})
    statement = "CREATE UNIQUE INDEX CONCURRENTLY t_v_key ON t (v)"
    code, out = migrate("run", "--config", str(config), "--target", "prod", "--", *psql(db, statement))
    assert code == 1, out
    indexes = db.execute(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    )
    names = {str(name): valid for name, valid in indexes}
    assert "t_v_key" not in names and names["old_v_key"] is False
    (row,) = journal_rows(tmp_path)
    assert row["outcome"] == "failed" and "after 1 attempt" in row["error"]
    assert row["result"]["after"]["invalid_indexes_dropped"] == ["public.t_v_key"]
    drops = [e for e in row["plan"]["effects"] if "DROP INDEX CONCURRENTLY" in e.get("statement", "")]
    assert [e["state"] for e in drops] == ["done"]


def test_an_old_transaction_refuses_the_run(tmp_path: Path, db: MigrationDb) -> None:
    marker = tmp_path / "ran"
    config = write_config(tmp_path, db, preflight={"max_transaction_age": "1s"})
    with Holder(db.dsn(app="forgotten-tx"), "SELECT 1"):
        time.sleep(1.5)
        code, out = migrate("run", "--config", str(config), "--target", "prod", "--", "touch", str(marker))
    assert code == 2, out
    assert "refused: a transaction older than max_transaction_age (1s)" in out and "'forgotten-tx'" in out
    assert not marker.exists()
    (row,) = journal_rows(tmp_path)
    assert row["outcome"] == "guardrail" and "forgotten-tx" in row["error"]
    assert "effects" not in (row["result"] or {})


def test_a_second_migration_of_the_target_is_refused_while_the_first_runs(
    tmp_path: Path, db: MigrationDb
) -> None:
    config = write_config(tmp_path, db)
    first: list[tuple[int, str]] = []
    thread = threading.Thread(
        target=lambda: first.append(
            migrate("run", "--config", str(config), "--target", "prod", "--", "sleep", "4")
        )
    )
    thread.start()
    deadline = time.monotonic() + 20
    while not command_started(tmp_path):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    code, out = migrate("run", "--config", str(config), "--target", "prod", "--", "true")
    thread.join(timeout=30)
    assert code == 2, out
    assert "refused: migration 1 of target prod is running" in out
    assert first[0][0] == 0


def command_started(folder: Path) -> bool:
    """Whether the first run's command is running (its hook effect journaled `started`)."""
    try:
        rows = journal_rows(folder)
    except sqlite3.OperationalError:  # the journal is not created yet
        return False
    effects = [e for r in rows for e in (r["plan"] or {}).get("effects", [])]
    return any(e["kind"] == "hook" and e["state"] == "started" for e in effects)


def test_refusals_name_replicas_over_the_lag() -> None:
    settings = PreflightSettings(max_transaction_age=300, max_replica_lag=30)
    old = Session(42, "app", "worker", 301.0)
    why = refusals(
        [old, Session(7, "app", "web", 12.0)], [Replica("replica-1", 31.5), Replica("idle", None)], settings
    )
    assert why == [
        "a transaction older than max_transaction_age (300s): pid 42 (user app, application 'worker') open 301s",
        "replica replica-1 lags 31.5s, over max_replica_lag (30s)",
    ]
    assert refusals([], [Replica("replica-1", 29.0)], settings) == []


def test_the_run_of_a_dead_process_does_not_block_the_next(tmp_path: Path, db: MigrationDb) -> None:
    """A run left `running` by a process that died (its owner never seen alive since) is marked interrupted, and
    the next run goes on."""
    config_path = write_config(tmp_path, db)
    config = load_config(config_path, default_registry())
    server = config.server("prod")
    assert server is not None

    async def crashed_run() -> int:
        journal = Journal(open_store(config.journal), "migrate:dead-host:1:00000000")
        await journal.start()
        try:
            return await open_row(journal, server, Request("prod", ("true",), None, False))
        finally:
            await journal.close()

    dead = asyncio.run(crashed_run())
    code, out = migrate("run", "--config", str(config_path), "--target", "prod", "--", "true")
    assert code == 0, out
    rows = {r["id"]: r for r in journal_rows(tmp_path)}
    assert rows[dead]["outcome"] == "interrupted" and rows[dead + 1]["outcome"] == "succeeded"


def test_the_guard_sees_another_roles_old_transaction(tmp_path: Path, db: MigrationDb) -> None:
    """pg_read_all_stats is what shows the guard the transaction of a role it has nothing to do with."""
    stranger = f"stranger_{db.name}"
    db.server.execute(f"CREATE ROLE {stranger} LOGIN PASSWORD '{PASSWORD}'")
    try:
        db.execute(f"GRANT SELECT ON t TO {stranger}")
        config = write_config(tmp_path, db, preflight={"max_transaction_age": "500ms"})
        with Holder(db.dsn(user=stranger, app="stranger-report"), "SELECT count(*) FROM t"):
            time.sleep(1.0)
            code, out = migrate("run", "--config", str(config), "--target", "prod", "--", "true")
        assert code == 2, out
        assert f"(user {stranger}, application 'stranger-report')" in out
    finally:
        db.execute(f"DROP OWNED BY {stranger}")
        db.server.execute(f"DROP ROLE {stranger}")


def test_a_guard_that_cannot_see_every_session_refuses(tmp_path: Path, db: MigrationDb) -> None:
    stranger = f"stranger_{db.name}"
    db.server.execute(f"CREATE ROLE {stranger} LOGIN PASSWORD '{PASSWORD}'")
    db.server.execute(f"REVOKE pg_read_all_stats FROM {db.guard}")
    try:
        config = write_config(tmp_path, db)
        with Holder(db.dsn(user=stranger), "SELECT 1"):
            code, out = migrate("run", "--config", str(config), "--target", "prod", "--", "true")
        assert code == 2, out
        assert (
            "refused: the guard's role cannot see 1 session(s)' transactions: grant it pg_read_all_stats"
            in out
        )
    finally:
        db.server.execute(f"DROP ROLE {stranger}")


@pytest.mark.slow
def test_sigterm_kills_the_command_and_ends_the_row_interrupted(tmp_path: Path, db: MigrationDb) -> None:
    config = write_config(tmp_path, db)
    marker = tmp_path / "finished"
    program = (
        "import sys; from responder.migrate import cli; "
        f"sys.exit(cli.main(['migrate', 'run', '--config', {str(config)!r}, '--target', 'prod', '--',"
        f" 'sh', '-c', 'sleep 5 && touch {marker}']))"
    )
    proc = subprocess.Popen([sys.executable, "-c", program], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not command_started(tmp_path):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 1, out
    time.sleep(5.5)  # the command would have finished by now
    assert not marker.exists()
    (row,) = journal_rows(tmp_path)
    assert row["outcome"] == "interrupted" and "stopped by a signal" in row["error"]
