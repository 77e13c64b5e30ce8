"""PostgreSQL helpers of the tests: the monitoring role, the requested major version, a standby's base
copy."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg

from devtools.pgserver import PostgresServer

MONITOR_ROLE = "pgwarden_monitor"
MONITOR_PASSWORD = "monitor-secret-pw"


def requested_major() -> int | None:
    """The major version PGWARDEN_PG_MAJOR asks for, or None for the default server."""
    value = os.environ.get("PGWARDEN_PG_MAJOR", "").strip()
    return int(value) if value else None


# What pg_basebackup leaves out: runtime state, and the contents of these directories (WAL included: the
# standby streams it from the slot, which holds it from before the backup started).
_RUNTIME_FILES = {"postmaster.pid", "postmaster.opts", "pgsql_tmp"}
_EMPTIED = {"pg_wal", "pg_replslot", "pg_stat_tmp", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots",
            "pg_subtrans"}  # fmt: skip


def _left_out(where: str, names: list[str]) -> list[str]:
    if Path(where).name in _EMPTIED:
        return [n for n in names if n != "archive_status"]
    return [n for n in names if n in _RUNTIME_FILES]


def copy_for_standby(primary: PostgresServer, datadir: Path) -> None:
    """A low-level base backup (the relocatable builds have no pg_basebackup): the data directory copied
    between backup start and stop."""
    with psycopg.connect(primary.dsn(), autocommit=True) as conn:
        new_api = int(conn.execute(b"SHOW server_version_num").fetchall()[0][0]) >= 150000  # renamed in 15
        start = "pg_backup_start('standby', true)" if new_api else "pg_start_backup('standby', true, false)"
        conn.execute(f"SELECT {start}".encode())
        shutil.copytree(primary.datadir, datadir, ignore=_left_out)
        stop = "pg_backup_stop(true)" if new_api else "pg_stop_backup(false, true)"
        label = conn.execute(f"SELECT labelfile FROM {stop}".encode()).fetchall()[0][0]
    (datadir / "backup_label").write_text(label)
    (datadir / "standby.signal").touch()
