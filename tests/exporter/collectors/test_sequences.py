"""pg_sequence_used_ratio: ascending and descending sequences at known points of their range."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devtools.pgserver import PostgresServer
from tests.support.exporter import DB_A, DB_B, Scraper
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE

RATIO = "pg_sequence_used_ratio"


@pytest.fixture
def sequences(pg_server: PostgresServer, databases: tuple[str, str]) -> Iterator[None]:
    pg_server.execute(
        "CREATE SEQUENCE exp_up MINVALUE 0 MAXVALUE 100 START 0; SELECT setval('exp_up', 90); "
        "CREATE SEQUENCE exp_down INCREMENT -1 MINVALUE 0 MAXVALUE 100 START 100; SELECT setval('exp_down', 25); "
        "CREATE SEQUENCE exp_unused; "
        "CREATE TABLE exp_serial (id serial); INSERT INTO exp_serial DEFAULT VALUES",
        dbname=DB_A,
    )
    yield
    pg_server.execute("DROP SEQUENCE exp_up, exp_down, exp_unused; DROP TABLE exp_serial", dbname=DB_A)


async def test_sequence_use_by_value(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, sequences: None
) -> None:
    samples = await scraper_factory().scrape()
    seq = {"datname": DB_A, "schemaname": "public"}
    assert samples.get(RATIO, **seq, sequencename="exp_up") == pytest.approx(0.9)
    assert samples.get(RATIO, **seq, sequencename="exp_down") == pytest.approx(0.75)
    assert samples.get(RATIO, **seq, sequencename="exp_unused") is None  # never used: no last_value
    # serial: an integer sequence from 1 to 2^31 - 1, at 1
    assert samples.get(RATIO, **seq, sequencename="exp_serial_id_seq") == 0
    assert not samples.all(RATIO, datname=DB_B)


async def test_a_role_that_may_not_read_sequences_sees_none(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, sequences: None
) -> None:
    samples = await scraper_factory(pg_server.dsn("postgres", MONITOR_ROLE, MONITOR_PASSWORD)).scrape()
    assert samples.get("pg_scrape_collector_success", collector="sequences") == 1
    assert not samples.all(RATIO, datname=DB_A)
