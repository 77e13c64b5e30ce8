"""`make demo`: a throwaway PostgreSQL, a light workload, and pgwarden-exporter scraping it, with a live view.

Ctrl-C stops everything it started. DEMO_ONCE=1 runs a short scenario and exits 0 only if every check passed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psycopg

from devtools.pgserver import PostgresServer, free_port, start_server

ROOT = Path(__file__).resolve().parents[1]
MONITOR = ("pgwarden_demo_monitor", "demo-monitor-pw")
# The DSN comes from the environment, never the file; short TTLs so the live view moves.
DEMO_CONFIG = """\
targets:
  - name: demo
    dsn_env: DEMO_DSN
collectors:
  tables: {ttl: 5s}
  statio_tables: {ttl: 5s}
  indexes: {ttl: 5s}
  statements: {ttl: 5s}
"""


def say(start: float, text: str) -> None:
    print(f"[{time.monotonic() - start:6.1f}s] {text}", flush=True)


def prepare(server: PostgresServer) -> None:
    server.execute("CREATE DATABASE shop")
    server.execute(f"CREATE ROLE {MONITOR[0]} LOGIN PASSWORD '{MONITOR[1]}' IN ROLE pg_monitor")
    server.execute(
        "CREATE TABLE orders (id serial PRIMARY KEY, customer int, amount numeric, note text);"
        "CREATE INDEX orders_customer_idx ON orders (customer);"
        "CREATE INDEX orders_note_idx ON orders (note);"
        "INSERT INTO orders (customer, amount, note) SELECT g % 500, g, md5(g::text) "
        "FROM generate_series(1, 50000) g; ANALYZE",
        dbname="shop",
    )


def workload(server: PostgresServer, stop: threading.Event) -> None:
    """A few transactions a second, some deletes (dead tuples) and now and then a slow query."""
    with psycopg.connect(server.dsn("shop"), autocommit=True) as conn:
        n = 0
        while not stop.is_set():
            n += 1
            conn.execute(b"INSERT INTO orders (customer, amount, note) VALUES (42, 10, 'demo')")
            conn.execute(b"SELECT count(*) FROM orders WHERE customer = 42")
            if n % 20 == 0:
                conn.execute(b"DELETE FROM orders WHERE id IN (SELECT id FROM orders ORDER BY id LIMIT 200)")
            if n % 50 == 0:
                conn.execute(b"SELECT pg_sleep(1.5)")
            stop.wait(0.1)


def scrape(url: str) -> dict[str, float]:
    values: dict[str, float] = {}
    with urllib.request.urlopen(url, timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if line and not line.startswith("#"):
                name_labels, _, value = line.rpartition(" ")
                key = name_labels
                values[key] = values.get(key, 0.0) + float(value)
    return values


def oldest(values: dict[str, float]) -> float:
    """Age of the oldest active query (the workload's pg_sleep shows up here)."""
    ages = [
        v
        for k, v in values.items()
        if k.startswith("pg_stat_activity_oldest_query_seconds{") and 'state="active"' in k
    ]
    return max(ages, default=0.0)


def pick(values: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in values.items() if k == prefix or k.startswith(prefix + "{"))


def main() -> int:
    once = os.environ.get("DEMO_ONCE") == "1"
    start = time.monotonic()
    say(start, "starting a throwaway PostgreSQL on 127.0.0.1 ...")
    server = start_server()
    stop = threading.Event()
    exporter: subprocess.Popen[bytes] | None = None
    ok = True
    try:
        prepare(server)
        say(start, f"PostgreSQL {server.port} ready: database shop, 50,000 orders, a pg_monitor role")
        threading.Thread(target=workload, args=(server, stop), daemon=True).start()
        port = 9187 if _port_free(9187) else free_port()
        config = server.datadir.parent / "exporter.yml"
        config.write_text(DEMO_CONFIG)
        env = dict(os.environ, DEMO_DSN=server.dsn("postgres", user=MONITOR[0], password=MONITOR[1]))
        exporter = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                "--config",
                str(config),
                "--web.listen-address",
                f"127.0.0.1:{port}",
            ],
            env=env,
            cwd=ROOT,
        )
        url = f"http://127.0.0.1:{port}/metrics"
        _wait_ready(f"http://127.0.0.1:{port}/healthz")
        say(start, f"pgwarden-exporter ready: {url}  (landing page http://127.0.0.1:{port}/)")
        say(start, "live view (Ctrl-C stops everything):" if not once else "checking a few scrapes ...")
        previous: dict[str, float] | None = None
        rounds = 0
        while rounds < 4 or not once:
            rounds += 1
            values = scrape(url)
            commits = pick(values, "pg_stat_database_xact_commit")
            tps = (commits - pick(previous, "pg_stat_database_xact_commit")) / 2 if previous else 0.0
            previous = values
            say(
                start,
                f"pg_up={pick(values, 'pg_up'):.0f}  connections={pick(values, 'pg_stat_activity_count'):.0f}  "
                f"tps={tps:5.1f}  oldest_active_query={oldest(values):4.1f}s  "
                f"dead_tuples={pick(values, 'pg_stat_user_tables_n_dead_tup'):.0f}  "
                f"scrape={pick(values, 'pg_exporter_last_scrape_duration_seconds'):.3f}s  series={len(values)}",
            )
            ok = ok and pick(values, "pg_up") == 1 and pick(values, "pg_stat_user_tables_n_live_tup") > 0
            time.sleep(2)
    except KeyboardInterrupt:
        print()
    finally:
        say(start, "stopping ...")
        stop.set()
        if exporter is not None:
            exporter.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                exporter.wait(10)
            if exporter.poll() is None:
                exporter.kill()
        server.stop("fast")
        shutil.rmtree(server.datadir.parent, ignore_errors=True)
        say(start, "stopped")
    if once:
        print("demo: OK" if ok else "demo: FAILED")
        return 0 if ok else 1
    return 0


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    raise SystemExit(main())
