"""Database time per scrape: what each exporter costs the server, from pg_stat_statements, in the same run.

On a throwaway PostgreSQL it builds the scrape benchmark's database (2,000 tables with 3 indexes each and
~5,000 pg_stat_statements entries by default), then measures, for each exporter under a role of its own, the
sum of `total_exec_time` of that role's statements:

- cold: one scrape of a freshly started pgwarden (TTL 0, no caps: every collector and every relation size read,
  on a new backend), median of --cold runs, against a postgres_exporter 0.11 scrape (extended queries file; it
  caches nothing) and against the first scrape of a freshly started postgres_exporter; also pgwarden's next
  TTL-0 scrape, its sizes then within `size_ttl`;
- steady: both at their defaults, scraped every --interval seconds for --minutes (after one warm-up scrape), in
  database milliseconds per minute;
- many databases: on a server of its own with --databases small databases (--small-tables tables each, 3
  indexes), one cold refresh of every database: a fresh pgwarden (TTL 0, every database) against the first
  scrape of a fresh postgres_exporter with --auto-discover-databases (Debian's prometheus-postgres-exporter,
  the extended queries file with its per-table and per-index queries in every database), median of --cold
  runs of each, in turns; both as database time and as the CPU time of each exporter's backends from the
  kernel (bench.servercpu: on a loaded machine the first also counts waits for a core, which three
  connections at once pay more than one), and each exporter's statements summed over the databases. Beside
  them, the floor: what the sizes alone cost (pg_database_size once, then each table's and index's size in
  every database on a new backend, one at a time), which every exporter of these families pays whatever else
  it does; its ratio to postgres_exporter is as low as the many-databases ratio can go. Then both at their
  defaults on every database (pgwarden's TTLs, postgres_exporter reading everything on every scrape),
  scraped every --interval seconds for --minutes, in database milliseconds per minute.

pgwarden runs with the families postgres_exporter has here: bloat and wraparound (which it lacks) disabled, and
the per-database collectors on the DSN's database only (postgres_exporter's extended queries read no other).
The ratios printed are against postgres_exporter's figure of the same run; nothing here asserts.

    .venv/bin/python -m bench.dbtime
    .venv/bin/python -m bench.dbtime --tables 500 --minutes 1
    .venv/bin/python -m bench.dbtime --only-databases --databases 35
    .venv/bin/python -m bench.dbtime --only-databases --databases 35 --connections 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import yaml

from bench.scrape.__main__ import run_benchmark
from bench.scrape.database import (
    CREATE_BATCH_SQL,
    DB_NAME,
    PG_SETTINGS,
    QUERIES_FILE,
    STATEMENTS,
    BenchDatabase,
)
from bench.scrape.exporters import Exporter, pgwarden, postgres_exporter, started
from bench.scrape.report import say
from bench.servercpu import ServerCpu
from devtools.pgserver import PostgresServer
from exporter.collectors.relations import USER_SCHEMA

WORK_DIR = Path(__file__).resolve().parents[1] / ".bench" / "dbtime"
PASSWORD = "bench-dbtime-pw"
PGWARDEN_ROLE = "dbtime_pgwarden"
PE_ROLE = "dbtime_pe"
FLOOR_ROLE = "dbtime_floor"
TARGETS = {"cold": 1.0, "steady": 0.3, "databases": 0.5}
SMALL_DB = "small_{:02d}"

ROLE_OID = "(SELECT oid FROM pg_roles WHERE rolname = %s)"
TOTAL_SQL = (
    f"SELECT coalesce(sum(total_exec_time), 0)::float8 FROM pg_stat_statements WHERE userid = {ROLE_OID}"
)
# by statement, summed over the databases it ran in (one row per database in pg_stat_statements)
TOP_SQL = (
    "SELECT sum(total_exec_time)::float8 AS ms, sum(calls)::int8, "
    "left(regexp_replace(query, '\\s+', ' ', 'g'), 90) "
    f"FROM pg_stat_statements WHERE userid = {ROLE_OID} GROUP BY query ORDER BY ms DESC LIMIT %s"
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

    def top(self, role: str, limit: int = 5) -> list[tuple[Any, ...]]:
        return self.server.execute(TOP_SQL, DB_NAME, [role, limit])

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
    return steady_per_minute(ledger, pe, pw, minutes, interval)


def steady_per_minute(
    ledger: Ledger, pe: Exporter, pw: Exporter, minutes: float, interval: float
) -> dict[str, float]:
    """Both scraped every `interval` seconds for `minutes` after a warm-up scrape: database ms per minute."""
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


def create_small_databases(server: PostgresServer, count: int, tables: int) -> list[str]:
    """`count` databases of `tables` tables each (3 indexes, a few rows, statistics), as the bench database's."""
    names = [SMALL_DB.format(n) for n in range(count)]
    for name in names:
        server.execute(f"CREATE DATABASE {name}")
        server.execute(
            "SET pg_stat_statements.track = 'none'; " + CREATE_BATCH_SQL.format(lo=0, hi=tables - 1), name
        )
    return names


def measure_databases(
    server: PostgresServer, ledger: Ledger, names: list[str], args: argparse.Namespace
) -> dict[str, list[float]]:
    """Cold refreshes of every small database: postgres_exporter's first scrape with --auto-discover-databases
    (DSN on the first one, the others discovered) and a fresh pgwarden's first scrape at TTL 0, in turns (the
    machine's load drifts: each pair is measured under the same): each one's database time, and the CPU time
    of its backends (see bench.servercpu). Then each one's statements, by their database time per run (mean
    over the runs)."""
    figures: dict[str, list[float]] = {
        "pe": [], "pgwarden": [], "floor": [], "pe_cpu": [], "pgwarden_cpu": [], "floor_cpu": []
    }  # fmt: skip
    statements: dict[str, dict[str, list[float]]] = {PE_ROLE: {}, PGWARDEN_ROLE: {}, FLOOR_ROLE: {}}
    cpu = ServerCpu(server)

    def cold_visit(exporter: Exporter, role: str, key: str) -> None:
        ledger.reset(role)
        before = cpu.settled()
        with started([exporter]):
            exporter.scrape()
        figures[f"{key}_cpu"].append((cpu.settled() - before) * 1000)
        figures[key].append(ledger.ms(role))
        add_statements(statements[role], ledger.top(role, 100))

    for run in range(args.cold):
        cold_visit(discovering_postgres_exporter(server, names), PE_ROLE, "pe")
        config = every_database(cold_config(small_dsn(server, PGWARDEN_ROLE, names[0])), args.connections)
        cold_visit(
            pgwarden("pgwarden cold, every database", config, WORK_DIR, f"databases-{run}"),
            PGWARDEN_ROLE,
            "pgwarden",
        )
        ledger.reset(FLOOR_ROLE)
        before = cpu.settled()
        floor_visit(server, names)
        figures["floor_cpu"].append((cpu.settled() - before) * 1000)
        figures["floor"].append(ledger.ms(FLOOR_ROLE))
    for title, role, limit in (
        ("postgres_exporter --auto-discover-databases, first scrape", PE_ROLE, 12),
        ("pgwarden, cold refresh of every database", PGWARDEN_ROLE, 20),
    ):
        say_top(f"{title}, per run", mean_statements(statements[role], args.cold)[:limit])
    return figures


# What any exporter of these families pays on a cold refresh, however it reads the rest: the one walk of every
# database's directory (pg_database_size; both exporters make it), then, in each database on a new backend,
# the size of each table (pg_table_size) and each index (pg_relation_size), for which PostgreSQL opens every
# relation and builds its cache entry anew. Statistics, names and everything else are left out: a floor.
FLOOR_DATABASES_SQL = "SELECT datname, pg_database_size(oid) FROM pg_database WHERE datallowconn"
FLOOR_SIZES_SQL = f"""SELECT pg_table_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 'p') AND {USER_SCHEMA}
UNION ALL
SELECT pg_relation_size(i.indexrelid) FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE t.relkind IN ('r', 'm') AND {USER_SCHEMA}"""


def floor_visit(server: PostgresServer, names: Sequence[str]) -> None:
    """The sizes alone (FLOOR_*), one database at a time, each on a new connection of FLOOR_ROLE."""
    for k, name in enumerate(names):
        with psycopg.connect(small_dsn(server, FLOOR_ROLE, name), autocommit=True) as conn:
            if k == 0:
                conn.execute(FLOOR_DATABASES_SQL.encode()).fetchall()
            conn.execute(FLOOR_SIZES_SQL.encode()).fetchall()


def discovering_postgres_exporter(server: PostgresServer, names: Sequence[str]) -> Exporter:
    """postgres_exporter with --auto-discover-databases (its DSN on the first small database, the bench and
    postgres databases excluded) and the extended queries in every database."""
    pe = postgres_exporter(server, WORK_DIR)
    pe.argv = [a for a in pe.argv if not a.startswith("--extend.query-path=")]
    pe.argv += [
        f"--extend.query-path={every_database_queries()}",
        "--auto-discover-databases",
        f"--exclude-databases={','.join(sorted({'postgres', DB_NAME}))}",
    ]
    pe.env["DATA_SOURCE_NAME"] = small_dsn(server, PE_ROLE, names[0])
    return pe


def every_database(config: dict[str, Any], connections: int) -> dict[str, Any]:
    """pgwarden's `config` on every small database (the bench and postgres databases excluded)."""
    config["targets"][0]["databases"] = {"exclude": sorted({"postgres", DB_NAME})}
    config["targets"][0]["max_connections"] = connections
    return config


def add_statements(into: dict[str, list[float]], rows: Sequence[tuple[Any, ...]]) -> None:
    """Adds one run's (ms, calls, query) rows to the sums by query."""
    for ms, calls, query in rows:
        sums = into.setdefault(query, [0.0, 0.0])
        sums[0] += ms
        sums[1] += calls


def mean_statements(sums: dict[str, list[float]], runs: int) -> list[tuple[float, float, str]]:
    """(ms, calls, query) per run, heaviest first."""
    rows = [(ms / runs, calls / runs, query) for query, (ms, calls) in sums.items()]
    return sorted(rows, reverse=True)


def every_database_queries() -> Path:
    """The extended queries file with its per-table and per-index queries run in every database (`master:
    false`), as a postgres_exporter user watching many databases sets them; pg_stat_statements, one view for
    the whole server, stays on the DSN's database."""
    queries = yaml.safe_load(QUERIES_FILE.read_text())
    for name in ("pg_stat_user_tables", "pg_statio_user_tables", "pg_stat_user_indexes"):
        queries[name]["master"] = False
    path = WORK_DIR / "queries-every-database.yaml"
    path.write_text(yaml.safe_dump(queries, sort_keys=False))
    return path


def _runs(values: Sequence[float]) -> str:
    return ", ".join(f"{x:.1f}" for x in values)


def small_dsn(server: PostgresServer, role: str, database: str) -> str:
    return server.dsn(database, role, PASSWORD) + "?sslmode=disable"


def say_top(title: str, rows: Sequence[tuple[Any, ...]]) -> None:
    say(f"  heaviest statements, {title}:")
    for ms, calls, query in rows:
        say(f"    {ms:8.1f} ms {calls:>4g} calls  {query}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tables", type=int, default=2000, help="tables, 3 indexes each (default: 2000)")
    parser.add_argument("--cold", type=int, default=3, help="cold scrapes per exporter (default: 3)")
    parser.add_argument("--minutes", type=float, default=2.0, help="steady-state window (default: 2)")
    parser.add_argument("--interval", type=float, default=15.0, help="scrape interval, seconds (default: 15)")
    parser.add_argument("--databases", type=int, default=35, help="small databases (default: 35; 0: skip)")
    parser.add_argument(
        "--small-tables", type=int, default=10, help="tables per small database (default: 10)"
    )
    parser.add_argument("--only-databases", action="store_true", help="run only the many-databases case")
    parser.add_argument(
        "--connections",
        type=int,
        default=3,
        help="pgwarden's max_connections in the many-databases case (default: 3, its default)",
    )
    args = parser.parse_args(argv)
    if (
        args.tables < 1
        or args.connections < 1
        or not 1 <= args.cold <= 20
        or args.minutes <= 0
        or args.interval <= 0
    ):
        parser.error("--tables >= 1, --connections >= 1, --cold 1..20, --minutes and --interval > 0")
    if args.databases < 0 or args.small_tables < 1 or (args.only_databases and not args.databases):
        parser.error("--databases >= 0 (> 0 with --only-databases), --small-tables >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = (
        0 if args.only_databases else run_benchmark(PG_SETTINGS, lambda s: tables_case(s, args), WORK_DIR)
    )
    if args.databases and not result:
        result = run_benchmark(PG_SETTINGS, lambda s: databases_case(s, args), WORK_DIR)
    return result


def databases_case(server: PostgresServer, args: argparse.Namespace) -> None:
    """A server of `--databases` small databases, on its own."""
    server.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    server.execute(f"CREATE DATABASE {DB_NAME}")  # where the ledger reads pg_stat_statements
    server.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", DB_NAME)
    for role in (PGWARDEN_ROLE, PE_ROLE, FLOOR_ROLE):
        server.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor")
    names = create_small_databases(server, args.databases, args.small_tables)
    server.execute("CHECKPOINT")
    say(
        f"== {len(names)} databases of {args.small_tables} tables (3 indexes each); "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} =="
    )
    ledger = Ledger(server)
    figures = measure_databases(server, ledger, names, args)
    say(
        f"a cold refresh of every database (pgwarden's max_connections {args.connections}); median of the runs "
        "in brackets:"
    )
    for unit, suffix, what in (
        ("database ms", "", "pg_stat_statements' total_exec_time (wall time, waits for a core included)"),
        ("backend CPU ms", "_cpu", "the CPU time of the exporter's backends, start-up included"),
    ):
        say(f"  {unit}: {what}")
        pe, pw = figures["pe" + suffix], figures["pgwarden" + suffix]
        say(f"    postgres_exporter --auto-discover  {statistics.median(pe):8.1f}  ({_runs(pe)})")
        say(f"    pgwarden, every database          {statistics.median(pw):8.1f}  ({_runs(pw)})")
        ratios = [w / p for w, p in zip(pw, pe, strict=True)]
        say(
            f"    pgwarden / postgres_exporter, run by run: {', '.join(f'{r:.2f}' for r in ratios)}; median "
            f"{statistics.median(ratios):.2f}x, target <= {TARGETS['databases']}x"
        )
        floor = figures["floor" + suffix]
        floors = [f / p for f, p in zip(floor, pe, strict=True)]
        say(f"    floor: the sizes alone, in turn   {statistics.median(floor):8.1f}  ({_runs(floor)})")
        say(
            f"    floor / postgres_exporter, run by run: {', '.join(f'{r:.2f}' for r in floors)}; median "
            f"{statistics.median(floors):.2f}x (no exporter of these families can go below it)"
        )
    if args.minutes:
        config = every_database(same_families(small_dsn(server, PGWARDEN_ROLE, names[0])), 3)
        steady = steady_per_minute(
            ledger,
            discovering_postgres_exporter(server, names),
            pgwarden("pgwarden defaults, every database", config, WORK_DIR, "databases-steady"),
            args.minutes,
            args.interval,
        )
        say(
            f"database ms per minute, every database, {args.interval:g} s interval, defaults (pgwarden's TTLs, "
            f"max_connections 3), over {args.minutes:g} min:"
        )
        say(f"  postgres_exporter --auto-discover {steady['pe']:8.1f}")
        say(
            f"  pgwarden                          {steady['steady']:8.1f}  {steady['steady'] / steady['pe']:.2f}x"
        )
    say(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def tables_case(server: PostgresServer, args: argparse.Namespace) -> None:
    """The bench database of `--tables` tables: cold scrapes, then the steady state."""
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
    say("database ms per scrape (median of the runs in brackets; ratio against postgres_exporter's scrape):")
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


if __name__ == "__main__":
    raise SystemExit(main())
