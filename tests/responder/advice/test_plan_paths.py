"""Both plan paths on the pinned relocatable builds of the version matrix (devtools.pgversions): `EXPLAIN
(GENERIC_PLAN)` on 16+, `PREPARE` + `force_generic_plan` + `EXPLAIN EXECUTE` on 13 and 14 (15, Debian's, is the
normal suite's). 13 and 18, the oldest and the newest (one for each path), are
required: `make test-versions` installs them (CI runs it first), and without them the test skips, or fails under
PGWARDEN_REQUIRE_SERVICES=1. 14, 16 and 17 are tried when they are in the cache: the normal suite does not
download servers. These builds have no hypopg: the advice says how to enable
it, and the plans' findings are still reported."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator

import psycopg
import pytest

from devtools import pgversions
from devtools.pgserver import start_server
from responder.advice.advisor import Server, Settings, advise
from responder.advice.findings import SEQ_SCAN
from responder.advice.plans import PlanFailed, Planner
from responder.advice.statements import Statement
from tests.responder.advice.workload import Planted, plant
from tests.support.services import missing_service

REQUIRED = (13, 18)  # the oldest (PREPARE) and the newest (GENERIC_PLAN): what CI's version matrix installs


def _cached(major: int) -> bool:
    return (pgversions.bindir(major) / "postgres").exists()


# 15: Debian's, the normal suite's server
OTHERS = [m for m in pgversions.MAJORS if m in REQUIRED or (m != 15 and _cached(m))]


@pytest.fixture(scope="module", params=OTHERS, ids=[f"pg{m}" for m in OTHERS])
def pinned(request: pytest.FixtureRequest) -> Iterator[Planted]:
    major: int = request.param
    bindir = pgversions.bindir(major)
    if not _cached(major):
        missing_service(f"PostgreSQL {major} build (python -m devtools.pgversions {major})")
    server = start_server(bindir=bindir)
    try:
        running = int(server.execute("SHOW server_version_num")[0][0]) // 10000
        assert running == major
        yield plant(server, hypopg=False)
    finally:
        server.stop("immediate")
        shutil.rmtree(server.datadir.parent, ignore_errors=True)


def test_both_plan_paths_on_the_pinned_builds(pinned: Planted) -> None:
    planted, server = pinned, pinned.server
    advice = asyncio.run(advise(Server("pg", planted.dsn()), Settings(), {planted.database}))
    assert advice.error is None and advice.server_version // 10000 != 15
    (database,) = advice.databases
    assert database.error is None, database.error
    texts = {p.statement.text for p in database.plans}
    assert "SELECT * FROM orders WHERE customer_id = $1" in texts
    scans = {f.relation for p in database.plans for f in p.findings if f.kind == SEQ_SCAN}
    assert {"public.orders", "public.customers", "public.events"} <= scans
    (gone,) = [n for n in database.not_planned if "FROM gone" in n.statement.text]
    assert 'relation "gone" does not exist' in gone.reason
    assert database.hypopg is None and database.hypopg_hint is not None and database.recommendations == []
    rows = server.execute("SELECT count(*) FROM pg_prepared_statements")
    assert rows == [(0,)]


def test_either_path_runs_one_statement_only(pinned: Planted) -> None:
    """EXPLAIN (GENERIC_PLAN) goes over the simple protocol, the server parsing the text as one statement first;
    PREPARE goes over the extended protocol."""
    planted, server = pinned, pinned.server
    generic = int(server.execute("SHOW server_version_num")[0][0]) >= 160000

    async def plan(text: str) -> str | None:
        dsn = server.dsn(planted.database)
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            planner = Planner(conn, statement_timeout=5, lock_timeout=1)
            assert planner.generic_plan_option == generic
            try:
                await planner.plan(Statement(1, planted.database, 1, 1.0, text, params=1))
            except PlanFailed as exc:
                return str(exc)
            return None

    for text in ("SELECT * FROM tiny WHERE id = $1; COMMIT; DROP TABLE tiny", "SELECT $1; DROP TABLE tiny"):
        failure = asyncio.run(plan(text))
        assert failure is not None and "multiple commands" in failure
    assert asyncio.run(plan("SELECT * FROM tiny WHERE id = $1")) is None
    assert server.execute("SELECT count(*) FROM tiny", planted.database) == [(300,)]
