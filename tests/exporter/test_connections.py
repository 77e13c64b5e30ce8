"""The connection budget: a server of many databases read through `max_connections`, the connections to
other databases than the DSN's closed after `idle_timeout`, and the counts exported."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from devtools.pgserver import PostgresServer
from devtools.sampling import PeakWatch
from exporter.config import ConfigError, parse_config
from exporter.db import APPLICATION_NAME
from tests.support.exporter import DB_A, DB_B, Scraper, create_databases, wait_for

MANY = [f"exp_many_{i}" for i in range(8)]
COUNT_SQL = f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{APPLICATION_NAME}'"
BY_DATABASE_SQL = (
    f"SELECT datname, count(*) FROM pg_stat_activity WHERE application_name = '{APPLICATION_NAME}' GROUP BY 1"
)


@pytest.fixture(scope="module")
def many_databases(pg_server: PostgresServer, databases: tuple[str, str]) -> Iterator[list[str]]:
    create_databases(
        pg_server, dict.fromkeys(MANY, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
    )
    yield MANY
    for db in MANY:
        pg_server.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def connection_watch(pg_server: PostgresServer) -> PeakWatch:
    """The exporter's backends as the server sees them, sampled back to back in a thread while it runs."""
    return PeakWatch(lambda: int(pg_server.execute(COUNT_SQL)[0][0]))


async def eventually(predicate: Callable[[], bool]) -> None:
    """Wait for `predicate` (10 s at most), the event loop running meanwhile: the idle timers fire in it."""
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def held(pg_server: PostgresServer) -> dict[str, int]:
    return {str(db): int(n) for db, n in pg_server.execute(BY_DATABASE_SQL)}


@pytest.mark.parametrize("budget", [1, 3])
async def test_many_databases_are_read_through_the_budget_and_let_go_at_rest(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, many_databases: list[str], budget: int
) -> None:
    wait_for(lambda: not held(pg_server))  # the connections of earlier tests are gone
    scraper = scraper_factory(
        target={"max_connections": budget, "idle_timeout": "300ms"}, collectors={"defaults": {"ttl": "0s"}}
    )
    with connection_watch(pg_server) as watch:
        # two scrapes at once (two Prometheus servers) share the one budget
        first, second = await asyncio.gather(scraper.scrape(), scraper.scrape())
    assert watch.samples > 0 and 1 <= watch.peak <= budget
    for samples in (first, second):
        assert samples.get("pg_exporter_last_scrape_error") == 0
        visited = {lbl["datname"] for lbl, _ in samples.all("pg_stat_user_tables_n_live_tup", relname="t")}
        assert visited == set(many_databases)
        assert samples.get("pg_exporter_connections_max") == budget
        open_now = samples.get("pg_exporter_connections", state="open")
        assert open_now is not None and 1 <= open_now <= budget
    peak = first.get("pg_exporter_connections_peak")
    assert peak is not None and 1 <= peak <= budget
    # at rest: one connection, to the DSN's database
    await eventually(lambda: held(pg_server) == {"postgres": 1})
    rest = await scraper.scrape()
    assert rest.get("pg_exporter_connections", state="in_use") == 0
    assert rest.get("pg_stat_user_tables_n_live_tup", datname=DB_A, relname="small") == 2


async def test_connections_are_reused_while_not_idle_for_long(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    """Within idle_timeout a scrape reuses the connections the previous one left: none is opened anew."""
    wait_for(lambda: not held(pg_server))
    scraper = scraper_factory(
        target={
            "databases": {"include": ["postgres", DB_A, DB_B]},
            "max_connections": 3,
            "idle_timeout": "1h",
        },
        collectors={"defaults": {"ttl": "0s"}},
    )
    await scraper.scrape()
    pids = {
        int(r[0])
        for r in pg_server.execute(
            f"SELECT pid FROM pg_stat_activity WHERE application_name = '{APPLICATION_NAME}'"
        )
    }
    assert len(pids) == 3  # one per database: the DSN's database is one pool, not two
    samples = await scraper.scrape()
    again = {
        int(r[0])
        for r in pg_server.execute(
            f"SELECT pid FROM pg_stat_activity WHERE application_name = '{APPLICATION_NAME}'"
        )
    }
    assert again == pids
    assert samples.get("pg_exporter_connections", state="open") == 3


def test_the_budget_keys_are_validated_with_their_paths() -> None:
    target = {"name": "a", "dsn": "host=h", "max_connections": 0, "idle_timeout": "soon"}
    with pytest.raises(ConfigError) as info:
        parse_config({"targets": [target], "collectors": {"defaults": {"size_ttl": -1}}})
    text = str(info.value)
    for path in ("targets.0.max_connections", "targets.0.idle_timeout", "collectors.defaults.size_ttl"):
        assert path in text, text
    config = parse_config({"targets": [{"name": "a", "dsn": "host=h"}]})
    assert (config.targets[0].max_connections, config.targets[0].idle_timeout) == (3, 10.0)
    assert config.collectors.defaults.size_ttl == 300.0


async def test_scrapes_within_the_ttls_connect_to_no_other_database(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    """At the default TTLs the per-database collectors are read together, once a minute: the scrapes between
    stay on the DSN's database, and its connection is the one kept at rest."""

    def by_database() -> dict[str, int]:
        return {str(db): int(n) for db, n in pg_server.execute(BY_DATABASE_SQL)}

    wait_for(lambda: not by_database())
    scraper = scraper_factory(
        target={
            "databases": {"include": ["postgres", DB_A, DB_B]},
            "max_connections": 2,
            "idle_timeout": "1s",
        }
    )
    await scraper.scrape()
    await eventually(lambda: by_database() == {"postgres": 1})  # the others' closed after idle_timeout
    for _ in range(2):
        samples = await scraper.scrape()
        assert samples.get("pg_scrape_collector_success", collector="progress_vacuum") == 1
        assert by_database() == {"postgres": 1}
