"""Database time per scrape: what each exporter costs the server, from pg_stat_statements, in the same run.

On a throwaway PostgreSQL it builds the scrape benchmark's database (2,000 tables with 3 indexes each and
~5,000 pg_stat_statements entries by default), then measures, for each exporter under a role of its own, the
sum of `total_exec_time` of that role's statements:

- cold: one scrape of a freshly started pgwarden (TTL 0, no caps: every collector and every relation size read,
  on a new backend), median of --cold runs, against a postgres_exporter 0.11 scrape (extended queries file; it
  caches nothing) and against the first scrape of a freshly started postgres_exporter; also pgwarden's next
  TTL-0 scrape, its sizes then within `size_ttl`;
- steady: both at their defaults, scraped every --interval seconds for --minutes (after one warm-up scrape), in
  database milliseconds per minute.

pgwarden runs with the families postgres_exporter has here: bloat and wraparound (which it lacks) disabled, and
the per-database collectors on the DSN's database only (postgres_exporter's extended queries read no other).
The ratios printed are against postgres_exporter's figure of the same run; nothing here asserts.

    .venv/bin/python -m bench.dbtime
    .venv/bin/python -m bench.dbtime --tables 500 --minutes 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.scrape.__main__ import run_benchmark
from bench.scrape.database import DB_NAME, PG_SETTINGS, STATEMENTS, BenchDatabase
from bench.scrape.exporters import Exporter, pgwarden, postgres_exporter, started
from bench.scrape.report import say
from devtools.pgserver import PostgresServer

WORK_DIR = Path(__file__).resolve().parents[1] / ".bench" / "dbtime"
PASSWORD = "bench-dbtime-pw"
PGWARDEN_ROLE = "dbtime_pgwarden"
PE_ROLE = "dbtime_pe"
TARGETS = {"cold": 1.0, "steady": 0.3}

ROLE_OID = "(SELECT oid FROM pg_roles WHERE rolname = %s)"
TOTAL_SQL = (
    f"SELECT coalesce(sum(total_exec_time), 0)::float8 FROM pg_stat_statements WHERE userid = {ROLE_OID}"
)
TOP_SQL = (
    "SELECT total_exec_time::float8, calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) "
    f"FROM pg_stat_statements WHERE userid = {ROLE_OID} ORDER BY total_exec_time DESC LIMIT 5"
)


def dsn(server: PostgresServer, role: str) -> str:
    return server.dsn(DB_NAME, role, PASSWORD) + "?sslmode=disable"


def same_families(dsn: str, **collectors: Any) -> dict[str, Any]:
    return {
        "targets": [{"name": "bench", "dsn": dsn, "databases": {"include": [DB_NAME]}}],
        "collectors": {"bloat": {"enabled": False}, "wraparound": {"enabled": False}, **collectors},
    }


def cold_config(dsn: str) -> dict[str, Any]:
    config = same_families(dsn, defaults={"timeout": "60s", "ttl": "0s"})
    config["limits"] = {"statements_top_n": 0, "tables_per_database": 0, "indexes_per_database": 0}
    return config


class Ledger:
    """Database time of each role, from pg_stat_statements."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server

    def reset(self, role: str) -> None:
        self.server.execute(f"SELECT pg_stat_statements_reset({ROLE_OID})", DB_NAME, [role])

    def ms(self, role: str) -> float:
        return float(self.server.execute(TOTAL_SQL, DB_NAME, [role])[0][0])

    def top(self, role: str) -> list[tuple[Any, ...]]:
        return self.server.execute(TOP_SQL, DB_NAME, [role])

    def scrape_ms(self, exporter: Exporter, role: str) -> float:
        self.reset(role)
        exporter.scrape()
        return self.ms(role)


def measure_cold(server: PostgresServer, ledger: Ledger, runs: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"pe": [], "pe_first": [], "cold": [], "repeat": []}
    for run in range(runs):
        pe = postgres_exporter(server, WORK_DIR)
        pe.env["DATA_SOURCE_NAME"] = dsn(server, PE_ROLE)
        with started([pe]):
            # its first scrape is on a new backend, as pgwarden's cold one: every relation opened anew
            figures["pe_first"].append(ledger.scrape_ms(pe, PE_ROLE))
            if run == 0:
                figures["pe"] = [ledger.scrape_ms(pe, PE_ROLE) for _ in range(runs)]
                say_top("postgres_exporter, one scrape", ledger.top(PE_ROLE))
    for run in range(runs):
        exp = pgwarden("pgwarden cold", cold_config(dsn(server, PGWARDEN_ROLE)), WORK_DIR, f"cold-{run}")
        with started([exp]):
            figures["cold"].append(ledger.scrape_ms(exp, PGWARDEN_ROLE))
            if run == runs - 1:
                say_top("pgwarden, cold scrape", ledger.top(PGWARDEN_ROLE))
            figures["repeat"].append(ledger.scrape_ms(exp, PGWARDEN_ROLE))
    return figures


def measure_steady(
    server: PostgresServer, ledger: Ledger, minutes: float, interval: float
) -> dict[str, float]:
    pe = postgres_exporter(server, WORK_DIR)
    pe.env["DATA_SOURCE_NAME"] = dsn(server, PE_ROLE)
    pw = pgwarden("pgwarden defaults", same_families(dsn(server, PGWARDEN_ROLE)), WORK_DIR, "steady")
    with started([pe, pw]):
        pe.scrape()
        pw.scrape()
        time.sleep(interval)
        ledger.reset(PE_ROLE)
        ledger.reset(PGWARDEN_ROLE)
        scrapes = max(1, round(minutes * 60 / interval))
        next_at = time.monotonic()
        for _ in range(scrapes):
            pe.scrape()
            pw.scrape()
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        return {"pe": ledger.ms(PE_ROLE) / minutes, "steady": ledger.ms(PGWARDEN_ROLE) / minutes}


def say_top(title: str, rows: Sequence[tuple[Any, ...]]) -> None:
    say(f"  heaviest statements, {title}:")
    for ms, calls, query in rows:
        say(f"    {ms:8.1f} ms {calls:>4} calls  {query}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tables", type=int, default=2000, help="tables, 3 indexes each (default: 2000)")
    parser.add_argument("--cold", type=int, default=3, help="cold scrapes per exporter (default: 3)")
    parser.add_argument("--minutes", type=float, default=2.0, help="steady-state window (default: 2)")
    parser.add_argument("--interval", type=float, default=15.0, help="scrape interval, seconds (default: 15)")
    args = parser.parse_args(argv)
    if args.tables < 1 or not 1 <= args.cold <= 20 or args.minutes <= 0 or args.interval <= 0:
        parser.error("--tables >= 1, --cold 1..20, --minutes and --interval > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def body(server: PostgresServer) -> None:
        db = BenchDatabase(server)
        db.create()
        for role in (PGWARDEN_ROLE, PE_ROLE):
            server.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor")
        db.grow_to(args.tables)
        db.make_statements(STATEMENTS)
        server.execute("CHECKPOINT")
        say(
            f"== {args.tables:,} tables, {db.index_count():,} indexes, {db.statement_count():,} statements; "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} =="
        )
        ledger = Ledger(server)
        cold = measure_cold(server, ledger, args.cold)
        pe_cold = statistics.median(cold["pe"])
        say(
            "database ms per scrape (median of the runs in brackets; ratio against postgres_exporter's scrape):"
        )
        for key, label in (
            ("pe", "postgres_exporter 0.11"),
            ("pe_first", "postgres_exporter, first scrape"),
            ("cold", "pgwarden cold (fresh process)"),
            ("repeat", "pgwarden TTL 0, next scrape"),
        ):
            ms = statistics.median(cold[key])
            runs = ", ".join(f"{x:.1f}" for x in cold[key])
            say(f"  {label:<33} {ms:8.1f}  ({runs})  {ms / pe_cold:.2f}x")
        pe_first = statistics.median(cold["pe_first"])
        say(
            f"  pgwarden cold / postgres_exporter's first scrape (both on a new backend): "
            f"{statistics.median(cold['cold']) / pe_first:.2f}x; target <= {TARGETS['cold']}x"
        )
        steady = measure_steady(server, ledger, args.minutes, args.interval)
        ratio = steady["steady"] / steady["pe"]
        say(f"database ms per minute, {args.interval:g} s interval, default TTLs, over {args.minutes:g} min:")
        say(f"  postgres_exporter 0.11 {steady['pe']:8.1f}")
        say(f"  pgwarden               {steady['steady']:8.1f}  {ratio:.2f}x, target <= {TARGETS['steady']}x")
        say(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    return run_benchmark(PG_SETTINGS, body, WORK_DIR)


if __name__ == "__main__":
    raise SystemExit(main())
