"""Fixtures of the collector tests: an unprivileged application role to run queries as, and a streaming
standby of the test server."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="module")
def standby(pg_server: PostgresServer, databases: tuple[str, str]) -> Iterator[PostgresServer]:
    """A hot standby streaming from the test server through the physical slot `STANDBY_SLOT`."""
    base = Path(tempfile.mkdtemp(prefix="pgwarden-standby-"))
    if pg_server.run_as:
        user = pwd.getpwnam(pg_server.run_as)
        os.chown(base, user.pw_uid, user.pw_gid)
    datadir = base / "data"
    subprocess.run(
        [str(pg_server.bindir / "pg_basebackup"), "-d", pg_server.dsn(), "-D", str(datadir), "-R",
         "-X", "stream", "-c", "fast", "-C", "-S", STANDBY_SLOT],
        user=pg_server.run_as, check=True, capture_output=True, text=True,
    )  # fmt: skip
    port = free_port()
    with (datadir / "postgresql.conf").open("a") as conf:  # later lines win over the primary's
        conf.write(f"port = {port}\nunix_socket_directories = '{base}'\nhot_standby = on\n")
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
