"""The planted workload of the advice tests: tables with real rows and statistics, statements that need an index
and decoys that do not, entered into pg_stat_statements by running them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg

from devtools.pgserver import PostgresServer
from tests.support.services import missing_service

SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, region text NOT NULL);
INSERT INTO customers SELECT g, 'customer' || g || '@example.com', (ARRAY['eu', 'us', 'ap'])[1 + g % 3]
  FROM generate_series(1, 30000) g;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL,
  created_at timestamptz NOT NULL, amount int NOT NULL);
INSERT INTO orders SELECT g, 1 + (g * 7919) % 30000, (ARRAY['new', 'paid', 'shipped'])[1 + g % 3],
  '2026-01-01'::timestamptz + g * interval '1 minute', g % 500 FROM generate_series(1, 120000) g;
CREATE INDEX orders_created_at ON orders (created_at);
CREATE TABLE events (id bigint PRIMARY KEY, device_id int NOT NULL, payload int NOT NULL);
INSERT INTO events SELECT g, g % 5000, 0 FROM generate_series(1, 60000) g;
UPDATE events SET payload = payload + 1;
UPDATE events SET payload = payload + 1;
UPDATE events SET payload = payload + 1;
CREATE TABLE tiny (id int PRIMARY KEY, code text NOT NULL);
INSERT INTO tiny SELECT g, 'code' || g FROM generate_series(1, 300) g;
CREATE TABLE gone (x int);
ANALYZE;
"""

# (statement, parameters, calls): each needs the index NEEDED names, or none (the decoys)
WORKLOAD: list[tuple[str, tuple[object, ...], int]] = [
    ("SELECT * FROM orders WHERE customer_id = %s", (42,), 5),
    ("SELECT id FROM customers WHERE email = %s", ("customer7@example.com",), 5),
    ("SELECT * FROM events WHERE device_id = %s", (17,), 2),
    # decoys: served by orders_created_at, a low-selectivity filter, a tiny table
    ("SELECT * FROM orders WHERE created_at > %s ORDER BY created_at LIMIT 20", ("2026-03-01",), 5),
    ("SELECT count(*) FROM orders WHERE status = %s", ("paid",), 5),
    ("SELECT * FROM tiny WHERE code = %s", ("code5",), 5),
    # planned once the table is gone: cannot be planned
    ("SELECT * FROM gone WHERE x = %s", (1,), 3),
]
NEEDED = {("orders", ("customer_id",)), ("customers", ("email",)), ("events", ("device_id",))}


@dataclass(frozen=True)
class Planted:
    server: PostgresServer
    database: str

    def dsn(self, user: str | None = None, password: str | None = None) -> str:
        """The target's DSN, as a configuration names it: the `postgres` database, where pg_stat_statements is."""
        if user is None:
            return self.server.dsn("postgres")
        return self.server.dsn("postgres", user=user, password=password)

    def index_count(self) -> int:
        rows = self.server.execute("SELECT count(*) FROM pg_class WHERE relkind = 'i'", self.database)
        return int(rows[0][0])


def plant(server: PostgresServer, hypopg: bool = True, prefix: str = "advice") -> Planted:
    """A new database with the workload's tables and statements (and hypopg, unless `hypopg` is False)."""
    if hypopg and not server.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'"):
        missing_service("hypopg (Debian package postgresql-15-hypopg)")
    database = f"{prefix}_{uuid.uuid4().hex[:8]}"
    server.execute(f"CREATE DATABASE {database}")
    with psycopg.connect(server.dsn(database), autocommit=True) as conn:
        if hypopg:
            conn.execute(b"CREATE EXTENSION hypopg")
        conn.execute(SCHEMA.encode())
        for text, params, calls in WORKLOAD:
            for _ in range(calls):
                conn.execute(text.encode(), params)  # type: ignore[arg-type]
        conn.execute(b"DROP TABLE gone")
    return Planted(server, database)
