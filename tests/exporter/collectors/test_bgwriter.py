"""pg_stat_bgwriter: a requested checkpoint is counted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from devtools.pgserver import PostgresServer
from tests.support.exporter import Scraper


async def test_bgwriter_counts_a_requested_checkpoint(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer
) -> None:
    scraper = scraper_factory()
    before = (await scraper.scrape()).get("pg_stat_bgwriter_checkpoints_req_total")
    pg_server.execute("CHECKPOINT")
    after = await scraper.scrape()
    for _ in range(20):  # before PostgreSQL 15 the counts reach the statistics collector within ~0.5 s
        if after.get("pg_stat_bgwriter_checkpoints_req_total") != before:
            break
        await asyncio.sleep(0.25)
        after = await scraper.scrape()
    assert before is not None and after.get("pg_stat_bgwriter_checkpoints_req_total") == before + 1
    names = ["buffers_alloc", "checkpoint_write_time", "buffers_checkpoint"]
    if int(pg_server.execute("SHOW server_version_num")[0][0]) < 170000:
        names.append("buffers_backend")  # moved to pg_stat_io in 17
    for name in names:
        assert after.get(f"pg_stat_bgwriter_{name}_total") is not None, name
