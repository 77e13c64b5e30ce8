"""pg_settings: units normalised to seconds and bytes."""

from __future__ import annotations

from collections.abc import Callable

from tests.exporter.helpers import Scraper


async def test_settings_units_normalised(scraper_factory: Callable[..., Scraper]) -> None:
    samples = await scraper_factory().scrape()
    assert samples.get("pg_settings_max_connections") == 200
    assert samples.get("pg_settings_shared_buffers_bytes") == 128 * 1024 * 1024
    assert samples.get("pg_settings_checkpoint_timeout_seconds") == 300
    assert samples.get("pg_settings_statement_timeout_seconds") == 0
    assert samples.get("pg_settings_fsync") == 0  # the test server runs with fsync=off
    assert samples.get("pg_settings_pg_stat_statements_max") == 10000
    assert samples.get("pg_settings_work_mem_bytes") == 4 * 1024 * 1024
