"""Exporter fixtures: databases with known contents on the shared PostgreSQL server."""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from devtools.pgserver import PostgresServer
from tests.support.exporter import (
    DATABASES,
    DB_A,
    DB_B,
    Samples,
    ScrapeAfter,
    Scraper,
    ScratchTable,
    create_databases,
    flush_stats,
    make_config,
)
from tests.support.postgres import MONITOR_ROLE


@pytest.fixture(scope="session")
def databases(pg_server: PostgresServer) -> tuple[str, str]:
    create_databases(pg_server, DATABASES)
    for db in (DB_A, DB_B):
        pg_server.execute("ANALYZE", dbname=db)
    return DB_A, DB_B


@pytest.fixture
async def scraper_factory(
    pg_server: PostgresServer, databases: tuple[str, str]
) -> AsyncIterator[Callable[..., Scraper]]:
    """Builds scrapers against the test server (superuser unless `dsn` is given); closes them after."""
    made: list[Scraper] = []

    def factory(dsn: str | None = None, **sections: Any) -> Scraper:
        scraper = Scraper(make_config(dsn or pg_server.dsn("postgres"), **sections))
        made.append(scraper)
        return scraper

    yield factory
    for s in made:
        await s.close()


@pytest.fixture
def scrape_after(pg_server: PostgresServer, scraper_factory: Callable[..., Scraper]) -> ScrapeAfter:
    """`await scrape_after(db, sql)`: runs `sql` in `db` with its statistics flushed, then scrapes the test
    server with the default configuration."""

    async def scrape(db: str, sql: str) -> Samples:
        flush_stats(pg_server, db, sql)
        return await scraper_factory().scrape()

    return scrape


@pytest.fixture
def scratch_table(pg_server: PostgresServer, databases: tuple[str, str]) -> Iterator[ScratchTable]:
    """`scratch_table(db, name, definition, fill="")`: CREATE TABLE `name` `definition` in `db`, then runs the
    `fill` statements; returns `name`. The tables are dropped after the test, newest first."""
    created: list[tuple[str, str]] = []

    def create(db: str, name: str, definition: str, fill: str = "") -> str:
        pg_server.execute(f"CREATE TABLE {name} {definition}; {fill}", dbname=db)
        created.append((db, name))
        return name

    yield create
    for db, name in reversed(created):
        pg_server.execute(f"DROP TABLE {name}", dbname=db)


@pytest.fixture(scope="session")
def monitor_role() -> str:
    return MONITOR_ROLE


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(2)
    for conn in accepted:
        conn.close()
    sock.close()
