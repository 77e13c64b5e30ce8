"""pg_wal_segments and pg_wal_size_bytes against pg_ls_waldir(), across a segment switch."""

from __future__ import annotations

from collections.abc import Callable

from devtools.pgserver import PostgresServer
from tests.support.exporter import Scraper
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE

WALDIR_SQL = "SELECT count(*), sum(size) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'"  # segments only


async def test_wal_segments_and_size(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    pg_server.execute("CREATE TABLE exp_wal (id int); INSERT INTO exp_wal VALUES (1)")
    pg_server.execute("SELECT pg_switch_wal()")  # a new segment, so there are at least two
    pg_server.execute("DROP TABLE exp_wal")
    scraper = scraper_factory(pg_server.dsn("postgres", MONITOR_ROLE, MONITOR_PASSWORD))
    before = pg_server.execute(WALDIR_SQL)[0]
    samples = await scraper.scrape()
    after = pg_server.execute(WALDIR_SQL)[0]
    segments = samples.get("pg_wal_segments")
    size = samples.get("pg_wal_size_bytes")
    assert (segments, size) in {before, after}  # a checkpoint may recycle one in between
    assert segments is not None and segments >= 1 and size == segments * 16 * 1024 * 1024
