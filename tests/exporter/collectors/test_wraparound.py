"""Transaction ID wraparound ages."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devtools.pgserver import PostgresServer
from tests.support.exporter import DB_A, Scraper


async def test_wraparound_ages(scraper_factory: Callable[..., Scraper], pg_server: PostgresServer) -> None:
    samples = await scraper_factory().scrape()
    age = pg_server.execute(f"SELECT age(datfrozenxid) FROM pg_database WHERE datname = '{DB_A}'")[0][0]
    got = samples.get("pg_database_xid_age", datname=DB_A)
    assert got is not None and age - 50 <= got <= age + 50
    ratio = samples.get("pg_database_wraparound_ratio", datname=DB_A)
    assert ratio == pytest.approx(got / 2**31)
    assert samples.get("pg_database_wraparound_age_datfrozenxid_seconds", datname=DB_A) == got
