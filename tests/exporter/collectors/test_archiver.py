"""pg_stat_archiver on a server that never archived."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.exporter import Scraper


async def test_archiver_without_archiving(scraper_factory: Callable[..., Scraper]) -> None:
    samples = await scraper_factory().scrape()
    assert samples.get("pg_stat_archiver_archived_count") == 0
    assert samples.get("pg_stat_archiver_failed_count") == 0
    assert samples.get("pg_stat_archiver_last_archive_age") is None  # never archived: absent, not 0
