"""What the backfill tests share: a database owned by a migration role (no superuser), its config, the CLI."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from devtools.pgserver import PostgresServer
from responder.migrate import backfill
from tests.support.responder import config_file

MIGRATOR = "pgw_migrator"  # owns the database and its tables, as a migration role does
MIGRATOR_PASSWORD = "migrator-pw"


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def migrator_db(server: PostgresServer) -> Iterator[str]:
    """A fresh database owned by the migration role: its name."""
    if not server.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", params=(MIGRATOR,)):
        server.execute(f"CREATE ROLE {MIGRATOR} LOGIN PASSWORD '{MIGRATOR_PASSWORD}'")
    name = f"bf_{uuid.uuid4().hex[:8]}"
    server.execute(f"CREATE DATABASE {name} OWNER {MIGRATOR}")
    try:
        yield name
    finally:
        server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def as_migrator(server: PostgresServer, db: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """One statement run by the migration role (so what it creates, it owns)."""
    with psycopg.connect(server.dsn(db, user=MIGRATOR, password=MIGRATOR_PASSWORD), autocommit=True) as conn:
        cur = conn.execute(statement.encode(), params)
        return cur.fetchall() if cur.description else []


def make_items(server: PostgresServer, db: str, rows: int, table: str = "public.items") -> None:
    as_migrator(server, db, f"CREATE TABLE {table} (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0)")
    as_migrator(server, db, f"INSERT INTO {table} (id) SELECT g * 3 FROM generate_series(1, {rows}) g")


def backfill_config(folder: Path, server: PostgresServer, db: str, **overrides: Any) -> Path:
    """responder.yml with the target `production` (the migration role in `db`) and quick pauses."""
    raw: dict[str, Any] = {
        "targets": [{"name": "production", "dsn": server.dsn(db, user=MIGRATOR, password=MIGRATOR_PASSWORD)}],
        "replica_timeout": "1s",
        "playbooks": [],
        "migrations": {"backfill": {"pause": "0s"}, "retries": {"attempts": 2, "backoff": "0.1s"}},
    }
    migrations = {**raw["migrations"], **overrides.pop("migrations", {})}
    raw.update(overrides, migrations=migrations)
    return config_file(folder, **raw)


def items(assignment: str = "n = n + 1", batch_size: int = 50, table: str = "public.items") -> list[str]:
    """The arguments of a backfill of `table` on the target `production`."""
    return ["--target", "production", "--table", table, "--set", assignment, "--batch-size", str(batch_size)]


def run_backfill(config: Path, *args: str) -> tuple[int, str]:
    """The command in this process: its exit code and what it printed."""
    out = io.StringIO()
    code = backfill.main(["--config", str(config), *args], out)
    return code, out.getvalue()


def action_id(printed: str) -> int:
    """The journal id the command printed first (`backfill N: ...`)."""
    for line in printed.splitlines():
        if line.startswith("backfill ") and ":" in line:
            return int(line.split()[1].rstrip(":"))
    raise AssertionError(f"no backfill id in {printed!r}")
