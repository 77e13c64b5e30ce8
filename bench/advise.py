"""Index advice against a seeded workload: recall, precision, wall time and the database time it cost.

On a throwaway PostgreSQL (Debian's 15, with hypopg): --big tables from 50,000 to 2,000,000 rows (times
--scale), log-spaced, each with a few queries that need a specific missing index (an equality filter, a join
key, an ORDER BY ... LIMIT, an equality filter beside a low-selectivity one), and decoys that need none: queries
an existing index serves, filters on tiny tables, filters on a low-selectivity column, and queries whose fix is
not a plain index (an expression filter, a whole-table aggregate, ORDER BY random()). Each query is run 2-6
times so that pg_stat_statements holds it, then `advise` runs once, as a role of its own (pg_monitor and
pg_read_all_data), on the top --top statements.

Printed: recall (needed indexes recommended: a recommendation on the needed table with the needed column among
its first two), precision (recommendations that match a needed index), the advice's wall time, and the database
time it cost (pg_stat_statements' total_exec_time of the advisor's role, as bench/dbtime.py measures).
Goal: recall >= 90%, precision >= 80%, under 30 s of database time for 50 statements.

    .venv/bin/python bench/advise.py [--scale 1.0] [--seed 25] [--top 50]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.pgserver import PostgresServer, running_server
from responder.advice.advisor import Server, Settings, advise
from responder.advice.model import Recommendation
from responder.advice.render import to_text

DB = "advise_bench"
ROLE = "advise_bench"
PASSWORD = "advise-bench-pw"
GOALS = {"recall": 0.9, "precision": 0.8, "db_seconds": 30.0}


@dataclass(frozen=True)
class Query:
    text: str  # with %s placeholders
    params: tuple[object, ...]
    needs: tuple[str, str] | None  # (table, column) of the index it needs, None for a decoy
    why: str


def table_sql(name: str, rows: int) -> str:
    """A table whose k1..k4 are selective (about 5 rows a value), `flag` is not (3 values), `grp` is indexed."""
    return f"""
SET pg_stat_statements.track = 'none';
CREATE TABLE {name} (id bigint PRIMARY KEY, k1 int NOT NULL, k2 int NOT NULL, k3 int NOT NULL, k4 int NOT NULL,
  flag int NOT NULL, grp int NOT NULL, ts timestamptz NOT NULL, note text NOT NULL, parent bigint);
INSERT INTO {name} SELECT g, (g::bigint * 7919) % {rows // 5 + 1}, (g::bigint * 104729) % {rows // 5 + 1},
  (g::bigint * 15485863) % {rows // 5 + 1}, (g::bigint * 32452843) % {rows // 5 + 1}, g % 3, g % 1000,
  '2026-01-01'::timestamptz + g * interval '1 second', md5(g::text), (g::bigint * 49979687) % {rows} + 1
  FROM generate_series(1, {rows}) g;
CREATE INDEX {name}_grp ON {name} (grp);
ANALYZE {name};
"""


def workload(rng: random.Random, big: int, scale: float) -> tuple[list[str], list[Query]]:
    sizes = [round(50_000 * (40 ** (i / max(big - 1, 1))) * scale) for i in range(big)]  # 50,000 .. 2,000,000
    setup = [table_sql(f"big{i}", n) for i, n in enumerate(sizes)]
    setup += [table_sql(f"tiny{i}", 300 + 500 * i) for i in range(3)]
    queries: list[Query] = []
    for i, rows in enumerate(sizes):
        t, other = f"big{i}", f"big{(i + 1) % big}"
        value = rng.randrange(rows // 5)
        queries += [
            Query(f"SELECT * FROM {t} WHERE k1 = %s", (value,), (t, "k1"), "equality filter"),
            Query(
                f"SELECT id, ts FROM {t} ORDER BY k3 DESC LIMIT %s", (10,), (t, "k3"), "ORDER BY ... LIMIT"
            ),
            Query(
                f"SELECT count(*) FROM {t} WHERE flag = %s AND k4 = %s",
                (1, value),
                (t, "k4"),
                "selective filter beside a low-selectivity one",
            ),
        ]
        if i % 2 == 0:
            queries.append(
                Query(
                    f"SELECT o.id FROM {other} o JOIN {t} p ON p.id = o.parent WHERE p.k2 = %s",
                    (value,),
                    (t, "k2"),
                    "join: filter on one side (the other side's key is needed too)",
                )
            )
            queries.append(
                Query(f"SELECT * FROM {t} WHERE grp = %s", (rng.randrange(1000),), None, "decoy: indexed")
            )
        else:
            queries.append(
                Query(f"SELECT count(*) FROM {t} WHERE flag = %s", (2,), None, "decoy: low selectivity")
            )
            queries.append(
                Query(
                    f"SELECT * FROM {t} WHERE lower(note) = %s", ("abc",), None, "decoy: an expression index"
                )
            )
    for i in range(3):
        queries.append(
            Query(f"SELECT * FROM tiny{i} WHERE k1 = %s", (rng.randrange(60),), None, "decoy: tiny table")
        )
    queries += [
        Query("SELECT sum(k1) FROM big0", (), None, "decoy: whole-table aggregate"),
        Query(f"SELECT id FROM big{big - 1} ORDER BY random() LIMIT %s", (1,), None, "decoy: random order"),
    ]
    return setup, queries


def needed_of(queries: list[Query], big: int) -> set[tuple[str, str]]:
    """The needed indexes: each query's, and the join's other side (its `parent` key)."""
    needed = {q.needs for q in queries if q.needs is not None}
    needed |= {(f"big{(i + 1) % big}", "parent") for i in range(0, big, 2)}
    return needed


def matches(rec: Recommendation, need: tuple[str, str]) -> bool:
    return rec.table == need[0] and need[1] in rec.columns[:2]


def prepare(server: PostgresServer, setup: list[str], queries: list[Query], rng: random.Random) -> None:
    server.execute(f"CREATE DATABASE {DB}")
    server.execute("CREATE EXTENSION hypopg", DB)
    server.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor, pg_read_all_data")
    for sql in setup:
        server.execute(sql, DB)
    server.execute("SELECT pg_stat_statements_reset()")
    with psycopg.connect(server.dsn(DB), autocommit=True) as conn:
        for query in queries:
            for _ in range(rng.randint(2, 6)):
                conn.execute(query.text.encode(), query.params or None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="table sizes times this (1.0: 50k to 2M rows)"
    )
    parser.add_argument("--big", type=int, default=9, help="large tables (9: 50 statements)")
    parser.add_argument("--seed", type=int, default=25)
    parser.add_argument("--top", type=int, default=50)
    parser.add_argument("--show", action="store_true", help="print the advice too")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    setup, queries = workload(rng, args.big, args.scale)
    needed = needed_of(queries, args.big)
    with running_server() as server:
        started = time.monotonic()
        prepare(server, setup, queries, rng)
        print(f"workload: {args.big} tables of {round(50_000 * args.scale):,} to {round(2e6 * args.scale):,} rows,"
              f" {len(queries)} statements ({sum(q.needs is None for q in queries)} decoys),"
              f" {len(needed)} needed indexes; loaded in {time.monotonic() - started:.0f} s")  # fmt: skip
        server.execute(
            "SELECT pg_stat_statements_reset((SELECT oid FROM pg_roles WHERE rolname = %s))", params=[ROLE]
        )
        target = Server("bench", server.dsn("postgres", ROLE, PASSWORD))
        wall = time.monotonic()
        advice = asyncio.run(advise(target, Settings(top=args.top, statement_timeout=30), {DB}))
        wall = time.monotonic() - wall
        db_ms, db_calls = server.execute(
            "SELECT coalesce(sum(total_exec_time), 0)::float8, coalesce(sum(calls), 0)::int8"
            " FROM pg_stat_statements WHERE userid = (SELECT oid FROM pg_roles WHERE rolname = %s)",
            params=[ROLE],
        )[0]
    if args.show:
        print(to_text(advice))
    (database,) = advice.databases
    recs = database.recommendations
    found = {n for n in needed if any(matches(r, n) for r in recs)}
    useful = [r for r in recs if any(matches(r, n) for n in needed)]
    recall = len(found) / len(needed) if needed else 1.0
    precision = len(useful) / len(recs) if recs else 1.0
    planned = len(database.plans)
    print(
        f"statements planned: {planned}, not planned: {len(database.not_planned)}; recommendations: {len(recs)};"
        f" the advisor's role ran {db_calls:,} statements"
    )
    for need in sorted(needed - found):
        print(f"  missed: {need[0]} ({need[1]})")
    for rec in recs:
        if rec not in useful:
            print(f"  not needed: {rec.create_statement}")
    per_50 = db_ms / 1000 * 50 / max(planned, 1)
    rows = [
        ("recall", f"{recall:.0%}", f">= {GOALS['recall']:.0%}", recall >= GOALS["recall"]),
        ("precision", f"{precision:.0%}", f">= {GOALS['precision']:.0%}", precision >= GOALS["precision"]),
        ("advice wall time", f"{wall:.1f} s", "", True),
        ("database time", f"{db_ms / 1000:.2f} s ({per_50:.2f} s per 50 statements)", "< 30 s per 50", per_50 < 30),
    ]  # fmt: skip
    for name, value, goal, ok in rows:
        print(f"{name:18} {value:42} {goal:14} {'ok' if ok else 'MISSED'}")
    return 0 if all(ok for *_, ok in rows) and not math.isnan(recall) else 1


if __name__ == "__main__":
    raise SystemExit(main())
