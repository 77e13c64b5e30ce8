"""A database owned by a migration role (no superuser), as the migrate tests use it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from devtools.pgserver import PostgresServer

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
