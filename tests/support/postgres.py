"""PostgreSQL helpers of the tests: the monitoring role, the requested major version, a standby's base
copy and a hot standby streaming from it, and a server that accepts SSL only."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg

from devtools.pgserver import PostgresServer, PostgresUnavailable, free_port, start_server
from tests.pgwarden.certs import make_certificates
from tests.support.exporter import wait_for
from tests.support.services import missing_service

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


@contextlib.contextmanager
def hot_standby(primary: PostgresServer, slot: str, prefix: str) -> Iterator[PostgresServer]:
    """A hot standby of `primary`, streaming through the physical slot `slot` (created here, dropped at the
    end), in a temporary directory named after `prefix`."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    datadir = base / "data"
    primary.execute("SELECT pg_create_physical_replication_slot(%s, true)", params=(slot,))
    copy_for_standby(primary, datadir)
    port = free_port()
    with (datadir / "postgresql.conf").open("a") as conf:  # later lines win over the primary's
        conf.write(
            f"port = {port}\nunix_socket_directories = '{base}'\nhot_standby = on\n"
            f"primary_conninfo = '{primary.dsn()}'\nprimary_slot_name = '{slot}'\n"
        )
    if primary.run_as:
        user = pwd.getpwnam(primary.run_as)
        for path in (base, *base.rglob("*")):
            os.chown(path, user.pw_uid, user.pw_gid)
    server = PostgresServer(datadir, port, primary.bindir, primary.run_as, base / "postgres.log")
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
        wait_for(lambda: not primary.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND active",
                                             params=(slot,)))  # fmt: skip
        primary.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
            params=(slot,),
        )


@contextlib.contextmanager
def ssl_only_server() -> Iterator[PostgresServer]:
    """A PostgreSQL that accepts only SSL on TCP (as RDS with IAM authentication), with a certificate made
    here; a missing server fails under PGWARDEN_REQUIRE_SERVICES, else skips."""
    base = Path(tempfile.mkdtemp(prefix="pgwarden-pg-ssl-"))
    certs = make_certificates(base / "certs")
    if os.geteuid() == 0 and _has_user("postgres"):
        owner = pwd.getpwnam("postgres")
        for path in (base / "certs", certs.server_cert, certs.server_key):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    settings = {
        "ssl": "on",
        "ssl_cert_file": f"'{certs.server_cert}'",
        "ssl_key_file": f"'{certs.server_key}'",
    }
    try:
        server = start_server(base, settings)
    except PostgresUnavailable as exc:
        missing_service(f"PostgreSQL ({exc})")
        raise
    hba = server.datadir / "pg_hba.conf"
    hba.write_text(hba.read_text().replace("host    all", "hostssl all"))
    server.execute("SELECT pg_reload_conf()")
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
