"""The lock queue, naked against guarded: what an `ALTER TABLE ... ADD COLUMN` behind a long transaction does
to the application's writes, without and with `pgwarden-responder migrate run`.

On a fresh local PostgreSQL: a table of --rows rows; a writer updates one row every 20 ms; another session holds
a transaction open on the table for --hold seconds; 1 s into it the migration starts (`psql -c "ALTER TABLE
... ADD COLUMN ..."`), naked (psql alone), then guarded (the same command through `migrate run`, at the
`migrations:` defaults unless --lock-timeout/--blocked-after say otherwise). Printed for each: the writer's
longest stall, its error count, its writes, and when the migration finished (seconds after the transaction
began). Goal: guarded, the longest stall is at most lock_timeout + 0.5 s where naked it is the whole --hold,
no writer error, and the migration completes once the transaction ends.

Then, the same writer running, the table's rows backfilled (a new column set from another) by `migrate
backfill` (batches of --batch-size keys, the `migrations:` defaults otherwise) against a single `UPDATE` of the
whole table (psql alone), each table vacuumed first: rows/s, the writer's longest stall and its errors. Goal: the
backfill's longest stall at most 1 s, where the single UPDATE's is the whole statement.

    .venv/bin/python bench/migrate.py [--rows 1000000] [--hold 30] [--batch-size 5000]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.pgserver import PostgresServer, running_server
from responder.migrate import cli

PASSWORD = "bench-pw"
DB, OWNER, GUARD = "bench", "bench_owner", "bench_guard"


def prepare(server: PostgresServer, rows: int) -> str:
    server.execute(f"CREATE ROLE {OWNER} LOGIN PASSWORD '{PASSWORD}'")
    server.execute(
        f"CREATE ROLE {GUARD} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_signal_backend, pg_read_all_stats, {OWNER}"
    )
    server.execute(f"CREATE DATABASE {DB} OWNER {OWNER}")
    dsn = server.dsn(DB, user=OWNER, password=PASSWORD)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL)")
        conn.execute("INSERT INTO accounts SELECT g, 0 FROM generate_series(1, %s) g", (rows,))
        conn.execute("VACUUM ANALYZE accounts")
    return dsn


class Writer(threading.Thread):
    """An update of one row every 20 ms: its latencies and errors."""

    def __init__(self, dsn: str, rows: int) -> None:
        super().__init__(daemon=True)
        self.dsn, self.rows = dsn, rows
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn + "?application_name=writer", autocommit=True) as conn:
            i = 0
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    conn.execute(
                        "UPDATE accounts SET balance = balance + 1 WHERE id = %s", (i % self.rows + 1,)
                    )
                except psycopg.Error as exc:
                    self.errors.append(str(exc).splitlines()[0])
                self.latencies.append(time.monotonic() - started)
                i += 1
                time.sleep(0.02)


def scenario(dsn: str, rows: int, hold: float, migrate: Any) -> dict[str, Any]:
    """The writer, the long transaction and `migrate()` (returns when the migration is done): the figures."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE accounts DROP COLUMN IF EXISTS note")
    writer = Writer(dsn, rows)
    writer.start()
    time.sleep(1.0)
    holder = psycopg.connect(dsn + "?application_name=long-transaction")
    holder.execute("SELECT count(*) FROM accounts WHERE id < 10")
    began = time.monotonic()
    release = threading.Timer(hold, holder.commit)
    release.start()
    time.sleep(1.0)
    code = migrate()
    finished = time.monotonic() - began
    release.join()
    holder.close()
    time.sleep(1.0)
    writer.stop.set()
    writer.join()
    return {
        "exit code": code,
        "migration finished at (s after the transaction began)": round(finished, 1),
        "writer's longest stall (s)": round(max(writer.latencies), 3),
        "writer errors": len(writer.errors),
        "writes": len(writer.latencies),
    }


def backfill_scenario(dsn: str, rows: int, backfill: Any) -> dict[str, Any]:
    """The writer running while `backfill()` sets every row's `doubled` (returns when done): the figures."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE accounts DROP COLUMN IF EXISTS doubled")
        conn.execute("ALTER TABLE accounts ADD COLUMN doubled bigint")
        conn.execute("VACUUM ANALYZE accounts")
    writer = Writer(dsn, rows)
    writer.start()
    time.sleep(1.0)
    began = time.monotonic()
    code = backfill()
    seconds = time.monotonic() - began
    time.sleep(1.0)
    writer.stop.set()
    writer.join()
    with psycopg.connect(dsn, autocommit=True) as conn:
        left = conn.execute("SELECT count(*) FROM accounts WHERE doubled IS NULL").fetchone()
    return {
        "exit code": code,
        "seconds": round(seconds, 1),
        "rows/s": round(rows / seconds),
        "rows left unset": left[0] if left else None,
        "writer's longest stall (s)": round(max(writer.latencies), 3),
        "writer errors": len(writer.errors),
        "writes": len(writer.latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--hold", type=float, default=30.0, help="seconds the long transaction stays open")
    parser.add_argument("--lock-timeout", default="2s")
    parser.add_argument("--blocked-after", default="2s")
    parser.add_argument("--batch-size", type=int, default=5000, help="the backfill's keys per batch")
    args = parser.parse_args()
    alter = "ALTER TABLE accounts ADD COLUMN note text"
    with running_server() as server, tempfile.TemporaryDirectory() as folder:
        dsn = prepare(server, args.rows)
        psql = ["psql", dsn, "-v", "ON_ERROR_STOP=1", "-q", "-c", alter]
        config = Path(folder) / "responder.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "auth": "none",
                    "journal": f"sqlite:///{folder}/journal.db",
                    "targets": [{"name": "bench", "dsn": server.dsn(DB, user=GUARD, password=PASSWORD)}],
                    "migrations": {
                        "lock_timeout": args.lock_timeout,
                        "watchdog": {"blocked_after": args.blocked_after},
                        "retries": {"attempts": 100, "backoff": "1s", "max_backoff": "5s"},
                        "preflight": {"max_transaction_age": "1h"},
                    },
                }
            )
        )
        runs = {
            "naked": lambda: subprocess.run(psql, check=False).returncode,
            "guarded": lambda: cli.main(
                ["migrate", "run", "--config", str(config), "--target", "bench", "--", *psql],
                out=io.StringIO(),
            ),
        }
        print(
            f"{args.rows} rows, a transaction open {args.hold:g}s, lock_timeout {args.lock_timeout},"
            f" blocked_after {args.blocked_after}"
        )
        for name, run in runs.items():
            figures = scenario(dsn, args.rows, args.hold, run)
            print(f"{name:8}", "; ".join(f"{k}: {v}" for k, v in figures.items()), flush=True)
        update = "UPDATE accounts SET doubled = balance * 2"
        backfills = {
            "single UPDATE": lambda: (
                subprocess.run(
                    ["psql", dsn, "-v", "ON_ERROR_STOP=1", "-q", "-c", update], check=False
                ).returncode
            ),
            "backfill": lambda: cli.main(
                [
                    "migrate",
                    "backfill",
                    "--config",
                    str(config),
                    "--target",
                    "bench",
                    "--table",
                    "public.accounts",
                    "--set",
                    "doubled = balance * 2",
                    "--batch-size",
                    str(args.batch_size),
                ],
                out=io.StringIO(),
            ),
        }
        print(f"backfill of {args.rows} rows, batches of {args.batch_size}, against one UPDATE")
        for name, run in backfills.items():
            figures = backfill_scenario(dsn, args.rows, run)
            print(f"{name:14}", "; ".join(f"{k}: {v}" for k, v in figures.items()), flush=True)


if __name__ == "__main__":
    main()
