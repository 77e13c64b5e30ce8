"""pg_stat_progress_vacuum: a vacuum held in progress by cost-based delay, checked against the view."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devtools.pgserver import PostgresServer
from exporter.collectors.progress_vacuum import PHASES
from tests.support.exporter import DB_A, DB_B, Scraper, ScratchTable, background_query, wait_for
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE

P = "pg_stat_progress_vacuum_"
# A page costs at least 1 and every cost point sleeps 100 ms: the vacuum stays in its heap scan for minutes.
SLOW = "?options=-c%20vacuum_cost_delay%3D100%20-c%20vacuum_cost_limit%3D1"
PROGRESS_SQL = (
    "SELECT phase, heap_blks_total, heap_blks_scanned, {}, heap_blks_vacuumed FROM pg_stat_progress_vacuum "
    "WHERE relid = 'exp_vacuumed'::regclass"
)


@pytest.fixture
def vacuumed_table(scratch_table: ScratchTable) -> str:
    return scratch_table(
        DB_A,
        "exp_vacuumed",
        "(id int, payload text) WITH (autovacuum_enabled = off)",
        "INSERT INTO exp_vacuumed SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g; "
        "DELETE FROM exp_vacuumed WHERE id % 2 = 0",
    )


async def test_a_vacuum_in_progress(
    scraper_factory: Callable[..., Scraper], pg_server: PostgresServer, vacuumed_table: str
) -> None:
    version = pg_server.execute("SHOW server_version_num")[0][0]
    max_dead = "max_dead_tuple_bytes" if int(version) >= 170000 else "max_dead_tuples"
    progress = PROGRESS_SQL.format(max_dead)
    with background_query(pg_server.dsn(DB_A) + SLOW, f"VACUUM {vacuumed_table}"):
        wait_for(lambda: bool(pg_server.execute(progress + " AND heap_blks_scanned > 0", dbname=DB_A)))
        before = pg_server.execute(progress, dbname=DB_A)[0]
        samples = await scraper_factory(pg_server.dsn("postgres", MONITOR_ROLE, MONITOR_PASSWORD)).scrape()
        after = pg_server.execute(progress, dbname=DB_A)[0]
    table = {"datname": DB_A, "relname": vacuumed_table}
    assert before[0] == after[0] == "scanning heap"
    phases = {phase: samples.get(P + "phase", **table, phase=phase) for phase in PHASES}
    assert phases == {phase: float(phase == "scanning heap") for phase in PHASES}
    relpages = pg_server.execute(f"SELECT pg_relation_size('{vacuumed_table}') / 8192", dbname=DB_A)[0][0]
    assert samples.get(P + "heap_blks", **table) == before[1] == relpages
    scanned = samples.get(P + "heap_blks_scanned", **table)
    assert scanned is not None and 0 < before[2] <= scanned <= after[2] < relpages
    vacuumed = samples.get(P + "heap_blks_vacuumed", **table)  # no index: vacuumed as it is scanned
    assert vacuumed is not None and before[4] <= vacuumed <= after[4]
    assert samples.get(P + "index_vacuums", **table) == 0
    assert samples.get(P + "max_dead_tuples", **table) == before[3]
    dead = samples.get(P + "num_dead_tuples", **table)
    assert dead is not None and dead >= 0
    assert not samples.all(P + "heap_blks", datname=DB_B)  # the other database runs no vacuum


async def test_no_vacuum_no_sample(scraper_factory: Callable[..., Scraper]) -> None:
    samples = await scraper_factory().scrape()
    assert samples.get("pg_scrape_collector_success", collector="progress_vacuum") == 1
    assert not [lbl for lbl, _ in samples.all(P + "heap_blks") if lbl["relname"] == "exp_vacuumed"]
