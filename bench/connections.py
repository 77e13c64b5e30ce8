"""Connection slots: what each exporter holds on a server of 1, 50 and 200 databases, in the same run.

For each count it creates the databases (a few tables each, from a template) on a throwaway PostgreSQL, then
starts, each under a role of its own so that pg_stat_activity tells their connections apart:

- pgwarden zero-config (DATA_SOURCE_NAME only: every database is visited, through its budget of 3);
- postgres_exporter 0.11 with the extended queries file, as it runs by default (the DSN's database only);
- the same with --auto-discover-databases (a connection per database).

It scrapes each once cold and once more, sampling the role's backends every few milliseconds meanwhile
(their peak), then waits REST_SECONDS after the last scrape and counts what each still holds. It prints the
medians and ratios against postgres_exporter; nothing here asserts.

    .venv/bin/python -m bench.connections                   # 1, 50 and 200 databases
    .venv/bin/python -m bench.connections --databases 1,50
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.scrape.__main__ import run_benchmark
from bench.scrape.database import QUERIES_FILE
from bench.scrape.exporters import POSTGRES_EXPORTER, Exporter, base_env, started
from bench.scrape.report import say
from devtools.pgserver import PostgresServer
from devtools.processes import free_port
from devtools.sampling import PeakWatch

WORK_DIR = Path(__file__).resolve().parents[1] / ".bench" / "connections"
DEFAULT_COUNTS = (1, 50, 200)
REST_SECONDS = 15.0  # after the last scrape: beyond pgwarden's idle_timeout (10 s)
SAMPLE_EVERY = 0.005
PASSWORD = "bench-connections-pw"
TEMPLATE = "bench_template"
SETTINGS = {"max_connections": "400", "autovacuum": "off"}


@dataclass
class Role:
    """One exporter under test, the role it connects as, and what was measured."""

    label: str
    role: str
    cold: float = 0.0
    warm: float = 0.0
    peak: int = 0
    rest: int = 0
    exporter: Exporter | None = field(default=None, repr=False)


def dsn(server: PostgresServer, role: str) -> str:
    return server.dsn("d_0", role, PASSWORD) + "?sslmode=disable"


def make_exporters(server: PostgresServer, workdir: Path) -> list[Role]:
    roles = [
        Role("pgwarden zero-config", "bench_pgwarden"),
        Role("postgres_exporter 0.11", "bench_pe"),
        Role("postgres_exporter --auto-discover", "bench_pe_auto"),
    ]
    for role in roles:
        port = free_port()
        env = base_env() | {"DATA_SOURCE_NAME": dsn(server, role.role)}
        if role.role == "bench_pgwarden":
            argv = [sys.executable, "-m", "exporter", "--web.listen-address", f"127.0.0.1:{port}"]
        else:
            argv = [
                POSTGRES_EXPORTER,
                f"--web.listen-address=127.0.0.1:{port}",
                f"--extend.query-path={QUERIES_FILE}",
                "--log.level=warn",
            ]
            if role.role == "bench_pe_auto":
                argv.append("--auto-discover-databases")
        log = workdir / f"{role.role}.log"
        role.exporter = Exporter(role.label, argv, env, port, log, pgwarden=role.role == "bench_pgwarden")
    return roles


@contextlib.contextmanager
def backend_watch(server: PostgresServer, role: str) -> Iterator[PeakWatch]:
    """The peak number of backends of one role, sampled every SAMPLE_EVERY seconds while the block runs."""
    with psycopg.connect(server.dsn(), autocommit=True) as conn:

        def backends() -> int:
            row = conn.execute(b"SELECT count(*) FROM pg_stat_activity WHERE usename = %s", [role]).fetchone()
            return int(row[0]) if row else 0

        with PeakWatch(backends, SAMPLE_EVERY) as watch:
            yield watch


def held(server: PostgresServer, role: str) -> int:
    return int(
        server.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", params=[role])[0][0]
    )


def prepare(server: PostgresServer) -> None:
    server.execute(f"CREATE DATABASE {TEMPLATE}")
    server.execute(
        "CREATE TABLE a (id int PRIMARY KEY, v text); CREATE INDEX ON a (v); "
        "INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 100) g; "
        "CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b SELECT generate_series(1, 10); ANALYZE",
        TEMPLATE,
    )
    for role in ("bench_pgwarden", "bench_pe", "bench_pe_auto"):
        server.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor")


def grow(server: PostgresServer, have: int, want: int) -> None:
    for i in range(have, want):
        server.execute(f"CREATE DATABASE d_{i} TEMPLATE {TEMPLATE}")


def measure(server: PostgresServer, count: int) -> list[Role]:
    workdir = WORK_DIR / str(count)
    workdir.mkdir(parents=True, exist_ok=True)
    roles = make_exporters(server, workdir)
    exporters = [r.exporter for r in roles if r.exporter is not None]
    with started(exporters):
        for role in roles:
            assert role.exporter is not None
            with backend_watch(server, role.role) as watch:
                role.cold, _ = role.exporter.scrape()
                time.sleep(0.5)
                role.warm, _ = role.exporter.scrape()
            role.peak = watch.peak
        time.sleep(REST_SECONDS)
        for role in roles:
            role.rest = held(server, role.role)
    return roles


def report(count: int, roles: Sequence[Role]) -> None:
    say()
    say(f"== {count} databases (+ postgres) == load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    say(f"{'exporter':<36} {'at rest':>8} {'peak':>6} {'cold scrape s':>14} {'2nd scrape s':>13}")
    for r in roles:
        say(f"{r.label:<36} {r.rest:>8} {r.peak:>6} {r.cold:>14.3f} {r.warm:>13.3f}")
    pgwarden, *references = roles
    for ref in references:
        say(
            f"  pgwarden / {ref.label}: at rest {pgwarden.rest}/{ref.rest}, peak {pgwarden.peak}/{ref.peak}, "
            f"cold scrape {pgwarden.cold / max(ref.cold, 1e-9):.2f}x"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--databases",
        type=lambda text: sorted({int(p) for p in text.split(",") if p.strip()}),
        default=list(DEFAULT_COUNTS),
        help="database counts, comma-separated (default: 1,50,200)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def body(server: PostgresServer) -> None:
        prepare(server)
        have = 0
        for count in args.databases:
            grow(server, have, count)
            have = max(have, count)
            report(count, measure(server, count))

    return run_benchmark(SETTINGS, body)


if __name__ == "__main__":
    raise SystemExit(main())
