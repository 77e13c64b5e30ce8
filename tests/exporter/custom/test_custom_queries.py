"""pgwarden's own `custom_queries:` against the real server: metrics, databases, writes, failures, TTL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from devtools.pgserver import PostgresServer
from exporter.assemble import build_collectors
from exporter.custom import ExtendedQueries
from exporter.custom.queries_file import QueryFile
from tests.support.custom_queries import APP_DB, OTHER_DB
from tests.support.exporter import Samples, Scraper, assert_declared_labels, make_config

JOB_QUEUE: dict[str, Any] = {
    "name": "job_queue",
    "sql": "SELECT queue, count(*) AS depth, max(cost) AS cost, sum(tries) AS tries FROM jobs GROUP BY queue",
    "ttl": "0s",
    "timeout": "2s",
    "metrics": [
        {"column": "depth", "name": "app_job_queue_depth", "help": "Jobs waiting", "labels": ["queue"]},
        {"column": "cost", "name": "app_job_queue_cost_max", "labels": ["queue"]},
        {"column": "tries", "name": "app_job_queue_tries_total", "type": "counter", "labels": ["queue"]},
    ],
}


def query(name: str, sql: str, **extra: Any) -> dict[str, Any]:
    """A custom query exporting one gauge `<name>_value` from its column `value`."""
    return {"name": name, "sql": sql, "metrics": [{"column": "value", "name": f"{name}_value"}], **extra}


def success(samples: Samples, name: str) -> float | None:
    return samples.get("pg_scrape_collector_success", collector=f"custom:{name}")


async def test_declared_metrics_with_their_labels(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, custom_databases: tuple[str, str]
) -> None:
    scraper = scraper_factory(pg_server.dsn(APP_DB), custom_queries=[JOB_QUEUE])
    samples = await scraper.scrape()
    assert success(samples, "job_queue") == 1
    assert samples.get("pg_exporter_last_scrape_error") == 0
    assert samples.get("app_job_queue_depth", queue="mail") == 2
    assert samples.get("app_job_queue_depth", queue='re"port\\s') == 1
    assert samples.get("app_job_queue_cost_max", queue="mail") == 10.5
    assert samples.get("app_job_queue_cost_max", queue='re"port\\s') is None  # NULL: absent, never 0
    assert samples.get("app_job_queue_tries_total", queue="mail") == 4
    assert samples.families["app_job_queue_depth"].documentation == "Jobs waiting"
    assert samples.families["app_job_queue_tries"].type == "counter"
    assert (
        samples.families["app_job_queue_cost_max"].documentation == "Column cost of custom query job_queue."
    )
    (collector,) = [c for c in scraper.inner.collectors if c.name == "custom:job_queue"]
    assert_declared_labels(samples, collector.families)


async def test_databases_listed_or_all_carry_datname(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, custom_databases: tuple[str, str]
) -> None:
    sql = "SELECT count(*) AS value FROM pg_class WHERE relname = 'jobs'"
    listed = query("listed", sql, databases=[OTHER_DB])
    everywhere = query("everywhere", sql, databases="all")
    samples = await scraper_factory(custom_queries=[listed, everywhere]).scrape()
    assert samples.all("listed_value") == [({"datname": OTHER_DB}, 0)]
    found = {labels["datname"]: value for labels, value in samples.all("everywhere_value")}
    assert found[APP_DB] == 1 and found[OTHER_DB] == 0 and "postgres" in found
    assert "template1" not in found


# A monitoring function that keeps state, as widely used query sets have: it writes a checksum baseline of the
# settings on its first call and reports how many baselines it holds (1 from then on).
BASELINE_FUNCTION = """
CREATE TABLE settings_baseline (checksum text);
CREATE FUNCTION settings_baseline() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM settings_baseline) THEN
    INSERT INTO settings_baseline SELECT md5(string_agg(name || '=' || setting, ',' ORDER BY name)) FROM pg_settings;
  END IF;
  RETURN (SELECT count(*) FROM settings_baseline);
END $$;
"""


async def test_writes_are_committed_and_several_statements_refused(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, custom_databases: tuple[str, str]
) -> None:
    """Custom queries run as postgres_exporter runs them, not read-only: a function writing its baseline on the
    first call works, and what a query writes is committed. One statement only, still."""
    pg_server.execute(BASELINE_FUNCTION, dbname=APP_DB)
    try:
        baseline = query("baseline", "SELECT settings_baseline() AS value")
        writes = query("writes", "INSERT INTO jobs (queue) VALUES ('written') RETURNING 1 AS value")
        escapes = query("escapes", "COMMIT; CREATE TABLE escaped (value int)")
        scraper = scraper_factory(pg_server.dsn(APP_DB), custom_queries=[baseline, writes, escapes])
        samples = await scraper.scrape()
        assert success(samples, "baseline") == 1 and samples.get("baseline_value") == 1
        assert success(samples, "writes") == 1 and samples.get("writes_value") == 1
        assert success(samples, "escapes") == 0
        assert pg_server.execute("SELECT count(*) FROM settings_baseline", dbname=APP_DB) == [(1,)]
        assert pg_server.execute("SELECT count(*) FROM jobs WHERE queue = 'written'", dbname=APP_DB) == [(1,)]
        assert pg_server.execute("SELECT to_regclass('escaped') IS NULL", dbname=APP_DB) == [(True,)]
        again = await scraper.scrape()  # the baseline is kept, not written twice
        assert success(again, "baseline") == 1 and again.get("baseline_value") == 1
        assert pg_server.execute("SELECT count(*) FROM settings_baseline", dbname=APP_DB) == [(1,)]
    finally:
        pg_server.execute(
            "DELETE FROM jobs WHERE queue = 'written'; DROP FUNCTION settings_baseline(); "
            "DROP TABLE settings_baseline",
            dbname=APP_DB,
        )


async def test_failing_queries_fail_only_their_collector(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, custom_databases: tuple[str, str]
) -> None:
    queries = [
        query("slow", "SELECT 1 AS value FROM pg_sleep(30)", timeout="200ms"),
        query("no_column", "SELECT 1 AS other"),
        query("twice", "SELECT 1 AS value FROM generate_series(1, 2)"),
        query("text", "SELECT 'many' AS value"),
        query("error", "SELECT value FROM no_such_table"),
        query("fine", "SELECT 3 AS value"),
    ]
    scraper = scraper_factory(pg_server.dsn(APP_DB), custom_queries=queries)
    for _ in range(2):  # the connection a timed-out query leaves behind is not reused broken
        samples = await scraper.scrape()
        assert samples.get("pg_up") == 1
        for name in ("slow", "no_column", "twice", "text", "error"):
            assert success(samples, name) == 0, name
            assert samples.all(f"{name}_value") == []
        assert success(samples, "fine") == 1 and samples.get("fine_value") == 3
        assert samples.get("pg_scrape_collector_success", collector="database") == 1
        assert samples.get("pg_exporter_last_scrape_error") == 1  # as postgres_exporter: a query failed


async def test_ttl_serves_the_cached_result(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, custom_databases: tuple[str, str]
) -> None:
    cached = query("cached", "SELECT count(*) AS value FROM jobs", ttl="1h")
    scraper = scraper_factory(pg_server.dsn(APP_DB), custom_queries=[cached])
    assert (await scraper.scrape()).get("cached_value") == 4
    pg_server.execute("INSERT INTO jobs (queue) VALUES ('later')", dbname=APP_DB)
    try:
        samples = await scraper.scrape()
        assert samples.get("cached_value") == 4
        age = samples.get("pg_exporter_collector_data_age_seconds", collector="custom:cached")
        assert age is not None and age > 0
    finally:
        pg_server.execute("DELETE FROM jobs WHERE queue = 'later'", dbname=APP_DB)


def test_disabled_query_builds_no_collector(pg_server: PostgresServer) -> None:
    config = make_config(pg_server.dsn(), custom_queries=[query("off", "SELECT 1 AS value", enabled=False)])
    assert "custom:off" not in [c.name for c in build_collectors(config)]


async def test_runonserver_skips_other_versions(
    pg_server: PostgresServer, custom_databases: tuple[str, str], tmp_path: Path
) -> None:
    version = pg_server.execute("SELECT current_setting('server_version_num')::int")[0][0]
    major = version // 10000
    text = f"""
    this_major:
      query: SELECT 1 AS one
      runonserver: ">={major}.0.0 <{major + 1}.0.0"
      metrics: [{{one: {{usage: GAUGE, description: This major}}}}]
    next_major:
      query: SELECT 1 AS one
      runonserver: "{major + 1}.x || <{major}.0.0"
      metrics: [{{one: {{usage: GAUGE, description: Other majors}}}}]
    """
    queries = QueryFile.model_validate(yaml.safe_load(text))
    config = make_config(pg_server.dsn(APP_DB)).with_extended_queries(
        ExtendedQueries(tmp_path / "queries.yaml", queries)
    )
    scraper = Scraper(config)
    try:
        samples = await scraper.scrape()
    finally:
        await scraper.close()
    assert samples.all("this_major_one") == [({"server": f"127.0.0.1:{pg_server.port}"}, 1)]
    assert success(samples, "next_major") == 1 and samples.all("next_major_one") == []
