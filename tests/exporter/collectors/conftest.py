"""Fixtures of the collector tests: an unprivileged application role to run queries as, and a streaming
standby of the test server."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devtools.pgserver import PostgresServer, free_port
from tests.exporter.conftest import DB_A
from tests.exporter.helpers import wait_for

APP_ROLE = "exp_app_user"
APP_PASSWORD = "app-user-pw"
STANDBY_SLOT = "exp_streaming_slot"


@pytest.fixture(scope="module")
def app_role(pg_server: PostgresServer, databases: tuple[str, str]) -> str:
    pg_server.execute(f"DROP ROLE IF EXISTS {APP_ROLE}")
    pg_server.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'")
    return pg_server.dsn(DB_A, user=APP_ROLE, password=APP_PASSWORD)


# What pg_basebackup leaves out: runtime state, and the contents of these directories (WAL included: the
# standby streams it from the slot, which holds it from before the backup started).
_RUNTIME_FILES = {"postmaster.pid", "postmaster.opts", "pgsql_tmp"}
_EMPTIED = {"pg_wal", "pg_replslot", "pg_stat_tmp", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots",
            "pg_subtrans"}  # fmt: skip


def _left_out(where: str, names: list[str]) -> list[str]:
    if Path(where).name in _EMPTIED:
        return [n for n in names if n != "archive_status"]
    return [n for n in names if n in _RUNTIME_FILES]


def _copy_for_standby(primary: PostgresServer, datadir: Path) -> None:
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


@pytest.fixture(scope="module")
def standby(pg_server: PostgresServer, databases: tuple[str, str]) -> Iterator[PostgresServer]:
    """A hot standby streaming from the test server through the physical slot `STANDBY_SLOT`."""
    base = Path(tempfile.mkdtemp(prefix="pgwarden-standby-"))
    datadir = base / "data"
    pg_server.execute("SELECT pg_create_physical_replication_slot(%s, true)", params=(STANDBY_SLOT,))
    _copy_for_standby(pg_server, datadir)
    port = free_port()
    with (datadir / "postgresql.conf").open("a") as conf:  # later lines win over the primary's
        conf.write(
            f"port = {port}\nunix_socket_directories = '{base}'\nhot_standby = on\n"
            f"primary_conninfo = '{pg_server.dsn()}'\nprimary_slot_name = '{STANDBY_SLOT}'\n"
        )
    if pg_server.run_as:
        user = pwd.getpwnam(pg_server.run_as)
        for path in (base, *base.rglob("*")):
            os.chown(path, user.pw_uid, user.pw_gid)
    server = PostgresServer(datadir, port, pg_server.bindir, pg_server.run_as, base / "postgres.log")
    try:
        server.start()
        wait_for(
            lambda: bool(server.execute("SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'")),
            timeout=30,
        )
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
        wait_for(lambda: not pg_server.execute("SELECT 1 FROM pg_replication_slots WHERE active"))
        pg_server.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
            params=(STANDBY_SLOT,),
        )
