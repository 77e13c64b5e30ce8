"""`migrate lint` fixtures: a database of tables on the fixture server, owned by a migration role the guard's
role is a member of (with pg_signal_backend and pg_read_all_stats, as the documentation asks), and configs on
it. The command's runner and the tables are in tests.support.migrate_lint."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.pgserver import PostgresServer
from tests.responder.migrate.scenario import MigrationDb, migration_db
from tests.support.migrate_lint import LARGE_TABLE_ROWS, TABLES, LintDb
from tests.support.responder import config_file
from tests.support.roles import RESPONDER_ROLE


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


@pytest.fixture
def lint_config(tmp_path: Path, lint_db: LintDb) -> Callable[..., Path]:
    """responder.yml with the target `production` on the lint database and `migrations:` as given (the large
    table threshold at LARGE_TABLE_ROWS unless overridden)."""

    def factory(**migrations: Any) -> Path:
        settings: dict[str, Any] = {"lint": {"large_table_rows": LARGE_TABLE_ROWS}, **migrations}
        target = {"name": "production", "dsn": lint_db.guard_dsn}
        return config_file(tmp_path, targets=[target], playbooks=[], migrations=settings)

    return factory


@pytest.fixture
def db(pg_server: PostgresServer) -> Iterator[MigrationDb]:
    """A database for `migrate run`: tables owned by a migration role (tests.responder.migrate.scenario)."""
    yield from migration_db(pg_server)
