"""A throwaway PostgreSQL server in a temporary directory on 127.0.0.1.

Used by the test fixtures, the benchmarks and `make demo`. initdb refuses to run as root, so when we are
root the server runs as the `postgres` system user (created when absent).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from devtools.processes import free_port as free_port  # re-exported: the tests import it from here

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "pgwarden-test-superuser"
USERADD_EXISTS = 9  # useradd(8): the username is already in use


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def find_bindir() -> Path:
    """The directory holding initdb/pg_ctl/postgres, newest major version first."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
        reverse=True,
    )
    if candidates:
        return Path(candidates[0]).parent
    raise PostgresUnavailable("initdb not found: install Debian's postgresql-15 package")


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        created = subprocess.run(
            ["useradd", "--system", "--home-dir", "/var/lib/postgresql", "--shell", "/bin/bash", name],
            check=False,
        )
        if created.returncode != USERADD_EXISTS:  # another process (an xdist worker) created it first
            created.check_returncode()


@dataclass
class PostgresServer:
    """A running server; `dsn()` builds connection strings for it."""

    datadir: Path
    port: int
    bindir: Path
    run_as: str | None
    log_path: Path
    settings: dict[str, str] = field(default_factory=dict)

    def dsn(self, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        if password is None and user == SUPERUSER:
            password = SUPERUSER_PASSWORD
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, user=self.run_as, check=True, text=True, capture_output=True, **kwargs)

    def start(self) -> None:
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"])

    def is_running(self) -> bool:
        result = subprocess.run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "status"],
            user=self.run_as,
            capture_output=True,
            text=True,
        )
        return result.returncode == 0

    def execute(self, sql: str, dbname: str = "postgres", params: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser, autocommit, and return its rows (if any)."""
        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            cur = conn.execute(sql.encode(), params)
            return cur.fetchall() if cur.description else []

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


DEFAULT_SETTINGS: Mapping[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "shared_preload_libraries": "'pg_stat_statements'",
    "pg_stat_statements.track": "all",
    "pg_stat_statements.max": "10000",
    "track_io_timing": "on",
    "max_connections": "200",
    "max_locks_per_transaction": "256",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
    "log_connections": "off",
}


def start_server(
    basedir: Path | None = None, settings: Mapping[str, str] | None = None, bindir: Path | None = None
) -> PostgresServer:
    """initdb and start a server with pg_stat_statements preloaded; the caller stops it. `bindir` picks the
    server binaries (another major version, from devtools.pgversions); by default `find_bindir()`'s."""
    bindir = bindir or find_bindir()
    run_as: str | None = None
    if os.geteuid() == 0:
        run_as = "postgres"
        _ensure_system_user(run_as)
    base = Path(basedir or tempfile.mkdtemp(prefix="pgwarden-pg-"))
    base.mkdir(parents=True, exist_ok=True)
    datadir = base / "data"
    pwfile = base / "pwfile"
    pwfile.write_text(SUPERUSER_PASSWORD + "\n")
    if run_as:
        pw = pwd.getpwnam(run_as)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    port = free_port()
    server = PostgresServer(datadir, port, bindir, run_as, base / "postgres.log")
    server._run(
        [
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            SUPERUSER,
            "--pwfile",
            str(pwfile),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]
    )
    merged = dict(DEFAULT_SETTINGS)
    merged.update(settings or {})
    merged["port"] = str(port)
    merged["unix_socket_directories"] = f"'{base}'"
    server.settings = merged
    with (datadir / "postgresql.conf").open("a") as conf:
        for key, value in merged.items():
            conf.write(f"{key} = {value}\n")
    server.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            server.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return server


@contextlib.contextmanager
def running_server(
    settings: Mapping[str, str] | None = None, bindir: Path | None = None
) -> Iterator[PostgresServer]:
    """A server for the duration of the block (`bindir`: as start_server's); its directory is removed afterwards."""
    server = start_server(settings=settings, bindir=bindir)
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(server.datadir.parent, ignore_errors=True)
