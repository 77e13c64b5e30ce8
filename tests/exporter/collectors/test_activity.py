"""pg_stat_activity: a long-running query counted, aged and grouped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.exporter.collectors.conftest import APP_ROLE
from tests.exporter.conftest import DB_A, DB_B
from tests.exporter.helpers import Scraper, background_query


async def test_long_running_query_is_counted_and_aged(
    scraper_factory: Callable[..., Scraper], app_role: str
) -> None:
    scraper = scraper_factory(collectors={"activity": {"long_running_thresholds": [1, 3600]}})
    with background_query(app_role, "SELECT pg_sleep(60)"):
        await asyncio.sleep(1.3)
        samples = await scraper.scrape()
    assert samples.get("pg_stat_activity_long_running_queries", datname=DB_A, threshold="1") == 1
    assert samples.get("pg_stat_activity_long_running_queries", datname=DB_A, threshold="3600") == 0
    assert samples.get("pg_stat_activity_long_running_queries", datname=DB_B, threshold="1") == 0
    oldest = samples.get("pg_stat_activity_oldest_query_seconds", datname=DB_A, state="active")
    assert oldest is not None and 1.2 <= oldest < 30
    active = samples.all("pg_stat_activity_count", datname=DB_A, state="active", usename=APP_ROLE)
    assert [v for _, v in active] == [1]
    assert active[0][0]["backend_type"] == "client backend"
    assert active[0][0]["wait_event"] == "PgSleep"
    max_tx = samples.get("pg_stat_activity_max_tx_duration", datname=DB_A, state="active", usename=APP_ROLE)
    assert max_tx is not None and max_tx >= 1.2
    ratio = samples.get("pg_stat_activity_connections_ratio")
    assert ratio is not None and 0 < ratio < 1
