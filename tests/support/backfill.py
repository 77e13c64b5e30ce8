"""`migrate backfill` in the tests: its config on the migration role's database, its arguments, the
command."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from devtools.pgserver import PostgresServer
from responder.migrate import backfill
from tests.support.migrator import MIGRATOR, MIGRATOR_PASSWORD
from tests.support.responder import config_file


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
