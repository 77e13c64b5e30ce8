"""Scraping one target: which databases are visited, the TTL cache, a slow collector failing alone, the
scrape deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp.test_utils import make_mocked_request

from devtools.pgserver import PostgresServer
from exporter.app import SCRAPE_TIMEOUT_HEADER, scrape_deadline
from exporter.collectors.statio_tables import COLUMNS as STATIO_COLUMNS
from exporter.exposition import join_fragments
from tests.support.exporter import DB_A, DB_B, Samples, Scraper

STATIO_HEAP_HIT = STATIO_COLUMNS[1].family.name


async def test_database_include_and_exclude(scraper_factory: Callable[..., Scraper]) -> None:
    only_b = await scraper_factory(target={"databases": {"include": [DB_B]}}).scrape()
    assert {lbl["datname"] for lbl, _ in only_b.all("pg_stat_user_tables_seq_scan")} == {DB_B}
    not_b = await scraper_factory(target={"databases": {"exclude": [DB_B]}}).scrape()
    dbs = {lbl["datname"] for lbl, _ in not_b.all("pg_stat_user_tables_seq_scan")}
    assert DB_A in dbs and DB_B not in dbs


async def test_ttl_cache_serves_until_expiry(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    cached = scraper_factory(collectors={"tables": {"ttl": "1h"}})
    uncached = scraper_factory(collectors={"tables": {"ttl": "0s"}})
    await cached.scrape()
    await uncached.scrape()
    pg_server.execute("DROP TABLE IF EXISTS appeared; CREATE TABLE appeared (id int)", dbname=DB_B)
    try:
        again = await cached.scrape()
        assert again.get("pg_stat_user_tables_seq_scan", datname=DB_B, relname="appeared") is None
        age = again.get("pg_exporter_collector_data_age_seconds", collector="tables")
        assert age is not None and age > 0
        assert again.get("pg_exporter_collector_data_age_seconds", collector="activity") == 0
        fresh = await uncached.scrape()
        assert fresh.get("pg_stat_user_tables_seq_scan", datname=DB_B, relname="appeared") == 0
    finally:
        pg_server.execute("DROP TABLE appeared", dbname=DB_B)


async def test_slow_collector_fails_alone(scraper_factory: Callable[..., Scraper]) -> None:
    """A collector timing out fails alone: the collectors after it on the same database's connection (which
    its cancelled statement left unusable) get another one and are served."""
    scraper = scraper_factory(collectors={"tables": {"timeout": "1ms"}})
    samples = await scraper.scrape()
    assert samples.get("pg_up") == 1
    assert samples.get("pg_scrape_collector_success", collector="tables") == 0
    assert samples.get("pg_scrape_collector_database_success", collector="tables", datname=DB_B) == 0
    assert samples.all("pg_stat_user_tables_seq_scan") == []
    for other in ("activity", "statio_tables", "indexes", "bloat"):
        assert samples.get("pg_scrape_collector_success", collector=other) == 1, other
    assert samples.get(STATIO_HEAP_HIT, datname=DB_B, relname="invoices") is not None
    # as in postgres_exporter, a built-in collector's failure is its pg_scrape_collector_success only
    assert samples.get("pg_exporter_last_scrape_error") == 0


async def test_a_refresh_outlasting_the_deadline_is_served_by_a_later_scrape(
    scraper_factory: Callable[..., Scraper],
) -> None:
    """Past the scrape's deadline the answer goes out without what is still being read; the refresh goes on in
    the background, and a later scrape serves it from the cache. (A deadline already passed: no refresh can
    finish by then, and no slow statement is needed, which would show in other tests' pg_stat_statements.)"""
    scraper = scraper_factory(collectors={"tables": {"ttl": "1h"}})
    started = time.monotonic()
    first = Samples(join_fragments([await scraper.inner.scrape("", deadline=started)]).decode())
    assert time.monotonic() - started < 2.0
    assert first.get("pg_up") == 1
    assert first.all("pg_stat_user_tables_seq_scan") == []
    assert first.get("pg_scrape_collector_success", collector="tables") == 0  # not read yet
    second = await scraper.scrape()  # the refresh the first one started, or its result
    assert second.get("pg_stat_user_tables_seq_scan", datname=DB_B, relname="invoices") is not None
    assert second.get("pg_scrape_collector_success", collector="tables") == 1
    third = await scraper.scrape()
    age = third.get("pg_exporter_collector_data_age_seconds", collector="tables")
    assert age is not None and age > 0  # within its TTL: served from the cache, not read again


def test_the_deadline_is_the_prometheus_scrape_timeout_less_a_margin() -> None:
    def deadline(value: str | None) -> float | None:
        headers = {} if value is None else {SCRAPE_TIMEOUT_HEADER: value}
        found = scrape_deadline(make_mocked_request("GET", "/metrics", headers=headers))
        return None if found is None else found - time.monotonic()

    ten = deadline("10")
    assert ten is not None and 8.9 < ten <= 9.0
    half = deadline("0.5")
    assert half is not None and 0.4 < half <= 0.45
    assert deadline(None) is None and deadline("soon") is None and deadline("-1") is None
    assert deadline("nan") is None
