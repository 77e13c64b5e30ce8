"""pg_static and the postmaster's start time."""

from __future__ import annotations

import time
from collections.abc import Callable

from devtools.pgserver import PostgresServer
from tests.support.exporter import Scraper


async def test_postmaster_and_static(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    samples = await scraper_factory().scrape()
    ((labels, value),) = samples.all("pg_static")
    assert value == 1
    version_num = int(pg_server.execute("SHOW server_version_num")[0][0])
    assert labels["short_version"] == f"{version_num // 10000}.{version_num % 10000}.0"
    assert labels["version"].startswith(f"PostgreSQL {version_num // 10000}.")
    started = samples.get("pg_postmaster_start_time_seconds")
    assert started is not None and time.time() - 3600 < started <= time.time()
