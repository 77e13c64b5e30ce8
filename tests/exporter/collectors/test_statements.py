"""pg_stat_statements: the top N statements' counters, the cap and the opt-in query text."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from devtools.pgserver import PostgresServer
from tests.exporter.conftest import DB_B
from tests.exporter.helpers import Scraper


async def test_statements_top_n_counters(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    with psycopg.connect(pg_server.dsn(DB_B), autocommit=True) as conn:
        for _ in range(7):
            conn.execute(b"SELECT (SELECT count(*) FROM invoices WHERE amount > 250), pg_sleep(0.01)")
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
    total = pg_server.execute("SELECT count(DISTINCT (userid, dbid, queryid)) FROM pg_stat_statements")[0][0]
    cut = capped.get("pg_exporter_rows_cut", collector="statements")
    assert cut is not None and cut >= total - 2 - 5 and cut > 0
    infos = capped.all("pg_stat_statements_query_info")
    assert len(infos) == 2 and all(lbl["query"] for lbl, _ in infos)
