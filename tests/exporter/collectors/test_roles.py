"""pg_roles_connection_limit: a limited role and an unlimited one."""

from __future__ import annotations

from collections.abc import Callable

from devtools.pgserver import PostgresServer
from tests.support.exporter import Scraper
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE


async def test_role_connection_limits(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    pg_server.execute("DROP ROLE IF EXISTS exp_limited")
    pg_server.execute("CREATE ROLE exp_limited LOGIN CONNECTION LIMIT 7")
    try:
        samples = await scraper_factory(pg_server.dsn("postgres", MONITOR_ROLE, MONITOR_PASSWORD)).scrape()
    finally:
        pg_server.execute("DROP ROLE exp_limited")
    assert samples.get("pg_roles_connection_limit", rolname="exp_limited") == 7
    assert samples.get("pg_roles_connection_limit", rolname=MONITOR_ROLE) == -1
