"""Every collector on the server this session runs (PostgreSQL 15 by default, each of 13-18 under
`make test-versions`), as a pg_monitor member; the families it exported are written for the matrix summary."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devtools.pgserver import PostgresServer
from exporter.collectors import COLLECTORS
from tests.support.exporter import DB_A, Scraper

SUMMARY_DIR = "PGWARDEN_VERSION_SUMMARY"


@pytest.fixture(scope="module")
def busy_server(pg_server: PostgresServer, databases: tuple[str, str]) -> Iterator[PostgresServer]:
    """A slot and a vacuumed, analyzed table, so that the families that need them have samples."""
    pg_server.execute("SELECT pg_create_physical_replication_slot('every_version_slot', true)")
    pg_server.execute("VACUUM ANALYZE small", dbname=DB_A)
    yield pg_server
    pg_server.execute("SELECT pg_drop_replication_slot('every_version_slot')")


async def test_every_collector_succeeds_on_this_version(
    scraper_factory: Callable[..., Scraper], monitor_dsn: str, busy_server: PostgresServer
) -> None:
    version_num = int(busy_server.execute("SHOW server_version_num")[0][0])
    options = {c.name: {"enabled": True} for c in COLLECTORS}
    options["statements"]["include_query"] = True
    samples = await scraper_factory(monitor_dsn, collectors=options).scrape()
    results = {lbl["collector"]: v for lbl, v in samples.all("pg_scrape_collector_success")}
    failed = sorted(name for name, ok in results.items() if ok != 1)
    assert not failed, f"PostgreSQL {version_num}: collectors failed: {failed}"
    assert set(results) == {c.name for c in COLLECTORS}
    assert samples.get("pg_exporter_last_scrape_error") == 0
    write_summary(version_num, sorted(samples.families))


def write_summary(version_num: int, families: list[str]) -> None:
    """pg<major>.json under $PGWARDEN_VERSION_SUMMARY, read by `python -m devtools.pgversions --summary`."""
    out = os.environ.get(SUMMARY_DIR)
    if not out:
        return
    major = version_num // 10000
    Path(out).mkdir(parents=True, exist_ok=True)
    record = {"major": major, "version_num": version_num, "families": families}
    (Path(out) / f"pg{major}.json").write_text(json.dumps(record, indent=1) + "\n")
