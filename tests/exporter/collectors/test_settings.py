"""pg_settings: units normalised to seconds and bytes."""

from __future__ import annotations

from collections.abc import Callable

from devtools.pgserver import PostgresServer
from tests.support.exporter import Scraper, server_setting


async def test_settings_units_normalised(scraper_factory: Callable[..., Scraper]) -> None:
    samples = await scraper_factory().scrape()
    assert samples.get("pg_settings_max_connections") == 200
    assert samples.get("pg_settings_shared_buffers_bytes") == 128 * 1024 * 1024
    assert samples.get("pg_settings_checkpoint_timeout_seconds") == 300
    assert samples.get("pg_settings_statement_timeout_seconds") == 0
    assert samples.get("pg_settings_fsync") == 0  # the test server runs with fsync=off
    assert samples.get("pg_settings_pg_stat_statements_max") == 10000
    assert samples.get("pg_settings_work_mem_bytes") == 4 * 1024 * 1024


async def test_a_setting_waiting_for_a_restart_is_flagged(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    pending = {"name": "max_connections"}  # a label called `name`: read with all(), get() takes `name` itself
    assert (await scraper_factory().scrape()).all("pg_settings_pending_restart") == []
    with server_setting(pg_server, "max_connections", "201"):  # written and reloaded: waits for a restart
        samples = await scraper_factory().scrape()
    assert samples.all("pg_settings_pending_restart") == [(pending, 1)]
    assert samples.get("pg_settings_max_connections") == 200  # still the running value
