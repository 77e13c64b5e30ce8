"""The demo's shop database: customers and their orders, the reads a shop makes, and the indexes they lack.

`shop.customers` (50,000 rows, indexed by its key and by `(country, created_at)`) and `shop.orders` (300,000
rows, half a year of them, indexed by its key only), owned by the application's role. The shop's reads: the
support desk looks a customer's orders up by email (a join), the account page shows a customer's latest
orders, the warehouse's queue takes the oldest orders of a status, the finance dashboard counts a day's orders
of a status; and two decoys the existing indexes serve (an order's page by its key, a country's new
customers). hypopg is created in the database, so the `index_advice` schedule (`ADVICE`) can weigh
hypothetical indexes; the responder's role may read the tables (planning checks privileges), nothing more.
"""

from __future__ import annotations

from typing import Any

import psycopg

from devtools.pgserver import PostgresServer

ADVICE = "index-advice"  # the demo's `index_advice` schedule, run once through POST /schedules/<name>/run
RESPONDER_ROLE = "demo_responder"
CUSTOMERS = 50_000
ORDERS = 300_000
STATUSES = ("new", "paid", "packed", "shipped", "delivered", "cancelled", "refunded")
SCHEMA = f"""
CREATE TABLE customers (
  id int PRIMARY KEY, email text NOT NULL, name text NOT NULL, country text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO customers (id, email, name, country, created_at)
  SELECT g, 'customer' || g || '@example.com', 'Customer ' || g, (ARRAY['DE', 'FR', 'GB', 'US', 'JP'])[1 + g % 5],
         now() - interval '2 years' + g * interval '20 minutes'
  FROM generate_series(1, {CUSTOMERS}) g;
CREATE TABLE orders (
  id bigserial PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL DEFAULT 'new',
  created_at timestamptz NOT NULL DEFAULT now(), amount int NOT NULL);
INSERT INTO orders (customer_id, status, created_at, amount)
  SELECT 1 + (g::bigint * 7919) % {CUSTOMERS}, (ARRAY{list(STATUSES)})[1 + (g * 31) % {len(STATUSES)}],
         now() - interval '180 days' + g * interval '50 seconds', 500 + (g * 37) % 20000
  FROM generate_series(1, {ORDERS}) g;
ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
CREATE INDEX customers_country_created_at ON customers (country, created_at);
GRANT SELECT ON customers, orders TO {RESPONDER_ROLE};
"""
# (statement, parameters, calls): what the shop reads, each run a few times so pg_stat_statements has it
READS: list[tuple[str, tuple[Any, ...], int]] = [
    (  # the support desk: a customer's orders, by the email they write from
        "SELECT o.id, o.status, o.amount, o.created_at FROM orders o JOIN customers c ON c.id = o.customer_id"
        " WHERE c.email = %s ORDER BY o.created_at DESC",
        ("customer4711@example.com",),
        4,
    ),
    (  # the account page: a customer's latest orders
        "SELECT id, status, amount, created_at FROM orders WHERE customer_id = %s ORDER BY created_at DESC LIMIT 10",
        (4711,),
        6,
    ),
    (  # the warehouse's packing queue: the oldest orders paid and not yet packed
        "SELECT id, customer_id, amount FROM orders WHERE status = %s ORDER BY created_at LIMIT 50",
        ("paid",),
        6,
    ),
    (  # the finance dashboard: a day's orders of one status
        "SELECT count(*), sum(amount) FROM orders WHERE status = %s AND created_at >= %s AND created_at < %s",
        ("paid", "yesterday", "today"),
        4,
    ),
    # decoys, served by the indexes the tables have: an order's page (its primary key), a country's new
    # customers (customers_country_created_at)
    ("SELECT * FROM orders WHERE id = %s", (123456,), 6),
    (
        "SELECT id, email FROM customers WHERE country = %s AND created_at >= %s ORDER BY created_at",
        ("FR", "today"),
        4,
    ),
]
# The advice for these reads, as the advisor gives it: (table, columns) of each index, in its order. One
# `orders (created_at)` serves the queue, the dashboard and the account page; the join needs an index on each
# side; the account page's sort then asks for `(customer_id, created_at)` too.
ADVISED = [  # (customer_id) chosen in a round, then dropped for (customer_id, created_at), which serves both
    ("orders", ("created_at",)),
    ("customers", ("email",)),
    ("orders", ("customer_id", "created_at")),
]
DECOYS = ("SELECT * FROM orders WHERE id = $1", "SELECT id, email FROM customers WHERE country = $1")


def prepare_shop(server: PostgresServer, app_dsn: str) -> None:
    """hypopg, the shop's tables and data (as the application), then its reads. pg_stat_statements forgets the
    bulk load first, as a DBA resets it after one: the advice is about the application's statements."""
    server.execute("CREATE EXTENSION hypopg", "shop")
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        conn.execute(SCHEMA.encode())
        # statistics for the planner, and the visibility map a table in use has (index-only scans)
        conn.execute(b"VACUUM ANALYZE customers, orders")
    server.execute(
        "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = 'shop'), 0)"
    )
    shop_reads(app_dsn)


def shop_reads(app_dsn: str) -> None:
    """The shop's reads, each as often as READS says."""
    with psycopg.connect(app_dsn + "?application_name=shop-reads", autocommit=True) as conn:
        for text, params, calls in READS:
            for _ in range(calls):
                conn.execute(text.encode(), params)


def advice_schedule() -> dict[str, Any]:
    """The weekly `index_advice` of the shop database (read-only: it runs without an approval)."""
    return {
        "name": ADVICE,
        "cron": "0 6 * * 1",
        "action": "index_advice",
        "target": {"target": "production", "datname": "shop"},
        "params": {"top": 20},
    }


def advice_text(result: dict[str, Any]) -> str:
    """The journaled advice (`index_advice`'s result) for the timeline: a headline, then each index."""
    lines = []
    for db in result.get("databases") or []:
        recommendations = db.get("recommendations") or []
        lines.append(
            f"index advice for {db['database']} in {result.get('seconds', 0):.1f} s: {db['planned']} statements"
            f" planned, {db['with_findings']} with findings, {len(recommendations)} indexes recommended"
        )
        for rec in recommendations:
            lines.append(
                f"    {rec['create_statement']}  -- cost {rec['cost_before']:,.0f} -> {rec['cost_after']:,.0f}"
                f" ({rec['saving']:.0%} less), {len(rec['queryids'])} statement(s)"
            )
    return "\n".join(lines) or "index advice: no database with statements"
