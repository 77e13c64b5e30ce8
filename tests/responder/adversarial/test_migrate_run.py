"""Adversarial `migrate run`: a dry run changes nothing (no command, no signal, no snapshot); hostile target
and command names are data, never shell; the watchdog never signals a backend that is not the migration's (one
named like it that started before the run, a look-alike name, a blocker that is not ours)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devtools.motoserver import MotoServer
from devtools.pgserver import PostgresServer
from tests.responder.migrate.scenario import (
    PASSWORD,
    Holder,
    MigrationDb,
    journal_rows,
    manual_snapshots,
    migrate,
    migration_db,
    on_rds,
    write_config,
)


@pytest.fixture
def db(pg_server: PostgresServer) -> Iterator[MigrationDb]:
    yield from migration_db(pg_server)


def test_dry_run_runs_signals_and_snapshots_nothing(
    tmp_path: Path,
    db: MigrationDb,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    instance = rds_instance()
    settings = on_rds(moto_server.endpoint_url, instance)
    config = write_config(tmp_path, db, **settings, watchdog={"blocked_after": "100ms"})
    marker = tmp_path / "ran"
    # a session waiting behind another for the whole dry run: nothing may be cancelled
    with (
        Holder(db.dsn(app="holder"), "LOCK TABLE t IN ACCESS EXCLUSIVE MODE") as holder,
        waiting(db) as waiter,
    ):
        code, out = migrate(
            "run",
            "--config",
            str(config),
            "--target",
            "prod",
            "--snapshot",
            "--dry-run",
            "--",
            "touch",
            str(marker),
        )
        holder.release()
    assert code == 0, out
    assert not marker.exists()
    assert waiter.errors == []  # its SELECT was never cancelled
    assert manual_snapshots(rds_client, instance) == []
    assert '"PGAPPNAME": "pgwarden-migrate:1"' in out and "CreateDBSnapshot" in out and "blocked_after" in out
    (row,) = journal_rows(tmp_path)
    assert row["outcome"] == "dry_run"
    effects = row["plan"]["effects"]
    assert [(e["kind"], e["state"]) for e in effects] == [("aws", "dry-run"), ("hook", "dry-run")]


def test_dry_run_still_runs_the_preflight(tmp_path: Path, db: MigrationDb) -> None:
    config = write_config(tmp_path, db, preflight={"max_transaction_age": "100ms"})
    with Holder(db.dsn(app="old"), "SELECT pg_sleep(0.3)"):
        code, out = migrate("run", "--config", str(config), "--target", "prod", "--dry-run", "--", "true")
    assert code == 2 and "refused: a transaction older" in out


@pytest.mark.parametrize("target", ["prod; DROP TABLE t", "$(touch pwned)", "../prod", "--help"])
def test_a_hostile_target_name_is_refused_before_anything(
    tmp_path: Path, db: MigrationDb, target: str
) -> None:
    config = write_config(tmp_path, db)
    code, out = migrate("run", "--config", str(config), f"--target={target}", "--", "touch", "pwned")
    assert code == 2, out
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert not (tmp_path / "journal.db").exists()  # no row: nothing was started
    assert db.execute("SELECT count(*) FROM t") == [(1000,)]


def test_a_hostile_command_is_argv_never_a_shell(tmp_path: Path, db: MigrationDb) -> None:
    config = write_config(tmp_path, db, retries={"attempts": 1})
    odd = tmp_path / "a; touch pwned $(touch pwned2) `touch pwned3`"
    code, out = migrate("run", "--config", str(config), "--target", "prod", "--", "touch", str(odd))
    assert code == 0, out
    assert odd.exists()
    assert not any((tmp_path / n).exists() for n in ("pwned", "pwned2", "pwned3"))
    code, out = migrate("run", "--config", str(config), "--target", "prod", "--", "no-such-tool-$(id)", "up")
    assert code == 1, out
    rows = journal_rows(tmp_path)
    assert rows[-1]["result"]["attempts"][0]["exit_code"] == 127
    url = db.dsn()  # a password on the command line is journaled masked
    code, _ = migrate("run", "--config", str(config), "--target", "prod", "--", "psql", url, "-c", "SELECT 1")
    assert code == 0 and PASSWORD not in repr(journal_rows(tmp_path))


def test_the_watchdog_signals_no_backend_that_is_not_the_migrations(tmp_path: Path, db: MigrationDb) -> None:
    """Three blockers with sessions waiting behind them for the whole run, none of them the migration's:
    `pgwarden-migrate:1` (this run's name) but started before the run, `pgwarden-migrate:10` (a look-alike),
    and a plain long transaction. The command itself only sleeps."""
    with psycopg.connect(db.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE a (x int); CREATE TABLE b (x int); CREATE TABLE c (x int)")
    config = write_config(tmp_path, db, watchdog={"blocked_after": "100ms"}, lock_timeout="60s")
    lock = "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE"
    with (
        Holder(db.dsn(app="pgwarden-migrate:1"), lock.format("a")) as early,
        Holder(db.dsn(app="pgwarden-migrate:10"), lock.format("b")) as lookalike,
        Holder(db.dsn(app="report"), lock.format("c")) as other,
        waiting(db, "a") as wa,
        waiting(db, "b") as wb,
        waiting(db, "c") as wc,
    ):
        code, out = migrate("run", "--config", str(config), "--target", "prod", "--", "sleep", "1.5")
        alive = [
            h.conn is not None and h.conn.execute("SELECT 1").fetchone() == (1,)
            for h in (early, lookalike, other)
        ]
        for h in (early, lookalike, other):
            h.release()
    assert code == 0, out
    assert alive == [True, True, True]
    assert wa.errors == wb.errors == wc.errors == []
    (row,) = journal_rows(tmp_path)
    assert row["id"] == 1  # so `pgwarden-migrate:1` above is this run's own name
    assert row["result"]["attempts"][0]["cancels"] == []
    assert [e["kind"] for e in row["plan"]["effects"]] == ["hook"]


class waiting:
    """A session that waits for a lock on `table` in a thread (its errors, if cancelled), until released."""

    def __init__(self, db: MigrationDb, table: str = "t") -> None:
        self.db, self.table, self.errors = db, table, list[str]()
        self.thread = threading.Thread(target=self._wait, daemon=True)
        self.started = threading.Event()

    def _wait(self) -> None:
        with psycopg.connect(self.db.dsn(app="waiter"), autocommit=True) as conn:
            conn.execute("SET statement_timeout = '60s'")
            self.started.set()
            try:
                conn.execute(f"SELECT count(*) FROM {self.table}")
            except psycopg.Error as exc:
                self.errors.append(str(exc))

    def __enter__(self) -> waiting:
        self.thread.start()
        self.started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(timeout=70)
