"""`migrate lint` fixtures: a database of tables on the fixture server, owned by a migration role the guard's role is
a member of (with pg_signal_backend and pg_read_all_stats, as the documentation asks), and the command's runner."""

from __future__ import annotations

import argparse
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.pgserver import PostgresServer
from responder.migrate.lint import add_lint_command
from tests.responder.conftest import RESPONDER_PASSWORD, RESPONDER_ROLE, config_file

LARGE_TABLE_ROWS = 10  # the tests' threshold: "large" is 50 rows here, not 100,000
BIG_ROWS = 50
SMALL_ROWS = 3
# table -> rows: the tables squawk's examples name, one side or the other of LARGE_TABLE_ROWS
TABLES = {
    "app_user": ("email text", BIG_ROWS),
    "accounts": ("balance int", SMALL_ROWS),
    "account": ("x int", BIG_ROWS),
    "recipe": ("view_count int", BIG_ROWS),
    "users": ("id int", SMALL_ROWS),
    "events": ("id int, kind text", BIG_ROWS),
}


@dataclass
class LintDb:
    server: PostgresServer
    name: str
    owner: str

    @property
    def guard_dsn(self) -> str:
        return self.server.dsn(self.name, user=RESPONDER_ROLE, password=RESPONDER_PASSWORD)

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        return self.server.execute(sql, self.name)


@pytest.fixture(scope="module")
def lint_db(pg_roles: PostgresServer) -> Iterator[LintDb]:
    name = f"lint_{uuid.uuid4().hex[:10]}"
    owner = f"mig_owner_{uuid.uuid4().hex[:8]}"
    pg_roles.execute(f"CREATE ROLE {owner} NOLOGIN")
    pg_roles.execute(f"GRANT {owner} TO {RESPONDER_ROLE}")
    pg_roles.execute(f"CREATE DATABASE {name}")
    db = LintDb(pg_roles, name, owner)
    for table, (columns, rows) in TABLES.items():
        db.execute(f"CREATE TABLE {table} ({columns})")
        db.execute(f"INSERT INTO {table} SELECT FROM generate_series(1, {rows})")
        db.execute(f"ALTER TABLE {table} OWNER TO {owner}")
        db.execute(f"ANALYZE {table}")
    try:
        yield db
    finally:
        pg_roles.execute(f"DROP DATABASE {name} WITH (FORCE)")
        pg_roles.execute(f"DROP ROLE {owner}")


@dataclass
class Result:
    code: int
    out: str


LintRunner = Callable[..., Result]


def run_lint(argv: list[str]) -> Result:
    """`migrate lint ARGV` through its argparse registration, called as `migrate`'s CLI calls it (`args.out`,
    `args.func(args)`: the responder's own registry)."""
    parser = argparse.ArgumentParser(prog="pgwarden-responder migrate", exit_on_error=False)
    add_lint_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["lint", *argv])
    out = io.StringIO()
    args.out = out
    code = args.func(args)
    return Result(code, out.getvalue())


@pytest.fixture
def lint_config(tmp_path: Path, lint_db: LintDb) -> Callable[..., Path]:
    """responder.yml with the target `production` on the lint database and `migrations:` as given (the large
    table threshold at LARGE_TABLE_ROWS unless overridden)."""

    def factory(**migrations: Any) -> Path:
        settings: dict[str, Any] = {"lint": {"large_table_rows": LARGE_TABLE_ROWS}, **migrations}
        target = {"name": "production", "dsn": lint_db.guard_dsn}
        return config_file(tmp_path, targets=[target], playbooks=[], migrations=settings)

    return factory
