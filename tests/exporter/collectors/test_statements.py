"""pg_stat_statements: the top N statements' counters, the cap and the opt-in query text."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from devtools.pgserver import PostgresServer
from tests.support.exporter import DB_B, Scraper, server_setting

P = "pg_stat_statements_"


def run_in_billing(pg_server: PostgresServer, times: int, *statements: bytes) -> None:
    """Run the statements, in turn, `times` times over one connection to the billing database."""
    with psycopg.connect(pg_server.dsn(DB_B), autocommit=True) as conn:
        for _ in range(times):
            for statement in statements:
                conn.execute(statement)


async def test_statements_top_n_counters(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    run_in_billing(pg_server, 7, b"SELECT (SELECT count(*) FROM invoices WHERE amount > 250), pg_sleep(0.01)")
    toplevel = " AND toplevel" if pg_server.execute("SHOW server_version_num")[0][0] >= "140000" else ""
    queryid, calls = pg_server.execute(
        f"SELECT queryid::text, calls FROM pg_stat_statements WHERE query LIKE '%amount > $1), pg_sleep%'{toplevel}"
    )[0]
    assert calls == 7
    samples = await scraper_factory().scrape()
    labels = {"user": "postgres", "datname": DB_B, "queryid": queryid}
    assert samples.get("pg_stat_statements_calls_total", **labels) == 7
    assert samples.get("pg_stat_statements_rows_total", **labels) == 7
    seconds = samples.get("pg_stat_statements_seconds_total", **labels)
    assert seconds is not None and 0.07 <= seconds < 1
    mean = samples.get("pg_stat_statements_mean_seconds", **labels)
    assert mean is not None and mean == pytest.approx(seconds / 7)
    maximum = samples.get("pg_stat_statements_max_seconds", **labels)
    assert maximum is not None and maximum >= mean
    assert samples.get("pg_stat_statements_query_info", **labels) is None  # query text off by default

    capped = await scraper_factory(
        limits={"statements_top_n": 2}, collectors={"statements": {"include_query": True}}
    ).scrape()
    rows = capped.all("pg_stat_statements_calls_total")
    assert len(rows) == 2
    total = pg_server.execute(
        "SELECT count(DISTINCT (userid, dbid, queryid)) FROM pg_stat_statements"
        " WHERE dbid IN (SELECT oid FROM pg_database) AND userid IN (SELECT oid FROM pg_roles)"
    )[0][0]  # a dropped database's entries are not ranked (as postgres_exporter's join)
    cut = capped.get("pg_exporter_rows_cut", collector="statements")
    assert cut is not None and cut >= total - 2 - 5 and cut > 0
    infos = capped.all("pg_stat_statements_query_info")
    assert len(infos) == 2 and all(lbl["query"] for lbl, _ in infos)


IO_SQL = """
SELECT queryid::text, sum(shared_blks_hit)::int8, sum(shared_blks_read)::int8, sum(temp_blks_written)::int8,
       sum(wal_records)::int8, sum(wal_bytes)::int8
FROM pg_stat_statements WHERE query LIKE %s GROUP BY queryid
"""


async def test_block_wal_and_planning_counters(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    run_in_billing(
        pg_server,
        3,
        b"SELECT sum(amount) FROM invoices WHERE id > 0 /* exp io */",
        b"UPDATE invoices SET amount = amount WHERE id < 50 /* exp wal */",
    )
    uncapped = {"statements_top_n": 0}  # these are not among the top statements
    read, wal = (pg_server.execute(IO_SQL, params=(f"%exp {what}%",))[0] for what in ("io", "wal"))
    samples = await scraper_factory(limits=uncapped).scrape()
    queryid, hit, blocks_read, temp_written = read[:4]
    labels = {"user": "postgres", "datname": DB_B, "queryid": queryid}
    assert hit > 0
    assert samples.get(P + "shared_blks_hit_total", **labels) == hit
    assert samples.get(P + "shared_blks_read_total", **labels) == blocks_read
    assert samples.get(P + "temp_blks_written_total", **labels) == temp_written == 0
    queryid, records, wal_bytes = wal[0], wal[4], wal[5]
    labels = {"user": "postgres", "datname": DB_B, "queryid": queryid}
    assert records > 0 and samples.get(P + "wal_records_total", **labels) == records
    assert samples.get(P + "wal_bytes_total", **labels) == wal_bytes
    assert samples.get(P + "plans_total", **labels) is None  # track_planning is off
    assert samples.get(P + "plan_seconds_total", **labels) is None

    with server_setting(pg_server, "pg_stat_statements.track_planning", "on"):
        run_in_billing(pg_server, 4, b"SELECT count(*) FROM invoices WHERE amount < 7 /* exp planned */")
        planned = pg_server.execute(
            "SELECT queryid::text, sum(plans)::int8, sum(total_plan_time) / 1000 FROM pg_stat_statements "
            "WHERE query LIKE '%exp planned%' GROUP BY queryid"
        )[0]
        samples = await scraper_factory(limits=uncapped).scrape()
    labels = {"user": "postgres", "datname": DB_B, "queryid": planned[0]}
    assert planned[1] == 4 and samples.get(P + "plans_total", **labels) == 4
    assert samples.get(P + "plan_seconds_total", **labels) == pytest.approx(planned[2])


async def test_a_dropped_databases_statements_take_no_top_n_slot(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    """pg_stat_statements keeps a dropped database's entries until they are evicted or reset; ranked before
    the names are joined, they took top-N slots and then vanished, so fewer than N series were exported."""
    pg_server.execute("DROP DATABASE IF EXISTS stmt_gone")
    pg_server.execute("CREATE DATABASE stmt_gone")
    with psycopg.connect(pg_server.dsn("stmt_gone"), autocommit=True) as conn:
        for _ in range(3):  # the heaviest statements on the server, so they rank first
            conn.execute(b"SELECT pg_sleep(0.3), 'stmt_gone_marker'")
            conn.execute(b"SELECT pg_sleep(0.3), 1 + 1")
    gone = pg_server.execute("SELECT oid FROM pg_database WHERE datname = 'stmt_gone'")[0][0]
    pg_server.execute("DROP DATABASE stmt_gone")
    orphans = pg_server.execute("SELECT count(*) FROM pg_stat_statements WHERE dbid = %s", params=(gone,))[0][
        0
    ]
    assert orphans >= 2  # still there: the case this test is about
    run_in_billing(pg_server, 2, b"SELECT 42", b"SELECT 43")
    capped = await scraper_factory(limits={"statements_top_n": 2}).scrape()
    rows = capped.all("pg_stat_statements_calls_total")
    assert len(rows) == 2, rows
    assert all(labels["datname"] for labels, _ in rows)
