"""Fixtures of the collector tests: an unprivileged application role to run queries as, and a streaming
standby of the test server."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.pgserver import PostgresServer, free_port
from tests.support.exporter import APP_PASSWORD, APP_ROLE, DB_A, STANDBY_SLOT, wait_for
from tests.support.postgres import copy_for_standby


@pytest.fixture(scope="module")
def app_role(pg_server: PostgresServer, databases: tuple[str, str]) -> str:
    pg_server.execute(f"DROP ROLE IF EXISTS {APP_ROLE}")
    pg_server.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'")
    return pg_server.dsn(DB_A, user=APP_ROLE, password=APP_PASSWORD)


@pytest.fixture(scope="module")
def standby(pg_server: PostgresServer, databases: tuple[str, str]) -> Iterator[PostgresServer]:
    """A hot standby streaming from the test server through the physical slot `STANDBY_SLOT`."""
    base = Path(tempfile.mkdtemp(prefix="pgwarden-standby-"))
    datadir = base / "data"
    pg_server.execute("SELECT pg_create_physical_replication_slot(%s, true)", params=(STANDBY_SLOT,))
    copy_for_standby(pg_server, datadir)
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
