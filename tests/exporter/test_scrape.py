"""Scraping one target: which databases are visited, the TTL cache, a slow collector failing alone."""

from __future__ import annotations

from collections.abc import Callable

from devtools.pgserver import PostgresServer
from exporter.collectors.statio_tables import COLUMNS as STATIO_COLUMNS
from tests.exporter.conftest import DB_A, DB_B
from tests.exporter.helpers import Scraper

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
    assert samples.get("pg_exporter_last_scrape_error") == 1
