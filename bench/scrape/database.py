"""The benchmark's database: many tables with indexes and statistics, and thousands of statements."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import yaml

from devtools.pgserver import PostgresServer

QUERIES_FILE = Path(__file__).resolve().parents[1] / "postgres_exporter_queries.yaml"
DB_NAME = "bench"
MONITOR_ROLE = "pgwarden_bench"
MONITOR_PASSWORD = "bench-monitor-pw"
STATEMENTS = 5000
TABLE_BATCH = 250

# postgres_exporter's size query locks every table, TOAST table and index in one statement (60,000 locks at
# 10,000 tables); the shared lock table holds max_locks_per_transaction * max_connections of them.
# pg_stat_statements.track = top (PostgreSQL's default): with `all`, a query also run nested (e.g. inside
# COPY) gets a second row with the same queryid, and postgres_exporter 0.11 fails the whole scrape with
# "collected metric ... was collected before with the same name and label values".
PG_SETTINGS = {
    "max_locks_per_transaction": "4096",
    "max_connections": "50",
    "pg_stat_statements.max": "10000",
    "pg_stat_statements.track": "top",
    "autovacuum": "off",
}


def exporter_dsn(server: PostgresServer) -> str:
    # lib/pq (postgres_exporter) defaults to sslmode=require; the throwaway server has no TLS.
    return server.dsn(DB_NAME, MONITOR_ROLE, MONITOR_PASSWORD) + "?sslmode=disable"


def postmaster_pid(server: PostgresServer) -> int:
    return int((server.datadir / "postmaster.pid").read_text().split()[0])


CREATE_BATCH_SQL = """
DO $$
DECLARE
  t text;
  n bigint;
BEGIN
  FOR i IN {lo}..{hi} LOOP
    t := 't_' || i;
    EXECUTE format('CREATE TABLE %I (id bigint PRIMARY KEY, a int, b text)', t);
    EXECUTE format('CREATE INDEX %I ON %I (a)', t || '_a', t);
    EXECUTE format('CREATE INDEX %I ON %I (b)', t || '_b', t);
    EXECUTE format('INSERT INTO %I SELECT g, g, md5(g::text) FROM generate_series(1, 5) g', t);
    EXECUTE format('UPDATE %I SET a = a + 1 WHERE id = 1', t);
    EXECUTE format('DELETE FROM %I WHERE id = 5', t);
    EXECUTE format('ANALYZE %I', t);
    EXECUTE format('SELECT count(*) FROM %I', t) INTO n;
  END LOOP;
  -- one bitmap scan over all three indexes of each table, so every idx_scan counter is non-zero
  PERFORM set_config('enable_seqscan', 'off', true);
  FOR i IN {lo}..{hi} LOOP
    EXECUTE format('SELECT count(*) FROM %I WHERE id = 2 OR a = 3 OR b = md5(''4'')', 't_' || i) INTO n;
  END LOOP;
END $$
"""


class BenchDatabase:
    """The `bench` database: tables t_0..t_{n-1} (3 indexes, 4 rows each) and ~5,000 statements."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.tables = 0

    def create(self) -> None:
        self.server.execute(f"CREATE DATABASE {DB_NAME}")
        self.server.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", DB_NAME)
        self.server.execute(
            f"CREATE ROLE {MONITOR_ROLE} LOGIN PASSWORD '{MONITOR_PASSWORD}' IN ROLE pg_monitor"
        )

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.server.dsn(DB_NAME), autocommit=True)

    def grow_to(self, tables: int) -> None:
        """Add tables (with rows, an update, a delete, ANALYZE and scans) until there are `tables`."""
        with self._connect() as conn:
            conn.execute(b"SET pg_stat_statements.track = 'none'")
            for lo in range(self.tables, tables, TABLE_BATCH):
                hi = min(lo + TABLE_BATCH, tables) - 1
                conn.execute(CREATE_BATCH_SQL.format(lo=lo, hi=hi).encode())
        self.tables = max(self.tables, tables)

    def make_statements(self, count: int) -> None:
        """Reset pg_stat_statements, then run `count` distinct statement shapes once each.

        Statement k reads table k mod n with an IN list of k div n + 1 parameters: a different table or a
        different list length gives a different queryid (PostgreSQL 15 does not merge IN lists).
        """
        with self._connect() as conn:
            conn.execute(b"SELECT pg_stat_statements_reset()")
            with conn.pipeline():
                for k in range(count):
                    width = k // self.tables + 1
                    sql = f"SELECT a FROM t_{k % self.tables} WHERE id IN ({', '.join(['%s'] * width)})"
                    conn.execute(sql.encode(), list(range(1, width + 1)))

    def statement_count(self) -> int:
        return int(self.server.execute("SELECT count(*) FROM pg_stat_statements", DB_NAME)[0][0])

    def index_count(self) -> int:
        return int(self.server.execute("SELECT count(*) FROM pg_stat_user_indexes", DB_NAME)[0][0])


def extended_queries() -> list[str]:
    data = yaml.safe_load(QUERIES_FILE.read_text())
    return [str(spec["query"]) for spec in data.values()]


def sql_seconds(dsn: str, queries: Sequence[str], repeats: int = 3) -> float:
    """Median time to run the extended queries and move their rows (COPY: no client-side decoding)."""
    times = []
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        for _ in range(repeats):
            started_at = time.perf_counter()
            for query in queries:
                with cur.copy(f"COPY ({query.strip()}) TO STDOUT".encode()) as copy:
                    for _chunk in copy:
                        pass
            times.append(time.perf_counter() - started_at)
    return statistics.median(times)
