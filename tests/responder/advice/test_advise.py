"""Index advice on the planted workload (PostgreSQL 15, the PREPARE path, hypopg): the needed indexes are
recommended and the decoys are not, findings name the plans' seq scans, a statement that cannot be planned is
listed with the reason, a write-heavy table is flagged, and a database without hypopg still gets its findings."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import psycopg
import pytest
import yaml

from devtools.pgserver import PostgresServer
from responder import cli
from responder.advice.advisor import Server, Settings, advise
from responder.advice.catalog import read_catalog
from responder.advice.findings import LARGE_SORT, NESTED_LOOP, SEQ_SCAN, Finding, find
from responder.advice.model import ENABLE_HYPOPG, Advice, DatabaseAdvice
from responder.advice.plans import Planner
from responder.advice.statements import Statement
from tests.responder.advice.workload import NEEDED, Planted, plant
from tests.support.responder import raw_config


def run(planted: Planted, dsn: str | None = None, **settings: float) -> DatabaseAdvice:
    advice = asyncio.run(
        advise(Server("pg", dsn or planted.dsn()), Settings(**settings), {planted.database})  # type: ignore[arg-type]
    )
    assert advice.error is None, advice.error
    (database,) = advice.databases
    assert database.error is None, database.error
    return database


def recommended(database: DatabaseAdvice) -> set[tuple[str, tuple[str, ...]]]:
    return {(r.table, r.columns) for r in database.recommendations}


def test_the_needed_indexes_are_recommended_and_the_decoys_are_not(planted: Planted) -> None:
    indexes = planted.index_count()
    database = run(planted)
    assert recommended(database) == NEEDED
    for rec in database.recommendations:
        assert rec.create_statement.startswith(f'CREATE INDEX CONCURRENTLY ON "public"."{rec.table}" (')
        assert rec.saving >= 0.5 and rec.weighted_after < rec.weighted_before
        assert rec.index_bytes > 0 and rec.table_bytes > 0
        (served,) = rec.served
        assert served.statement.calls in (2, 5) and served.statement.mean_ms > 0
        assert served.cost_after < served.cost_before / 2
        assert rec.columns[0] in served.statement.text
    assert planted.index_count() == indexes  # hypothetical: not one index row more


def test_findings_name_the_seq_scans_of_large_tables_only(planted: Planted) -> None:
    database = run(planted)
    scans = [f for plan in database.plans for f in plan.findings if f.kind == SEQ_SCAN]
    assert {"public.orders", "public.customers", "public.events"} <= {f.relation for f in scans}
    assert "public.tiny" not in {f.relation for f in scans}  # 300 rows: under the 10,000-row threshold
    # several statements scan orders (ranked by their time, which varies): the customer lookup's is among them
    (by_customer,) = [
        f for f in scans if f.relation == "public.orders" and "customer_id = $1" in (f.filter or "")
    ]
    assert by_customer.rows < 100  # the node's estimate, not the table's


def test_a_statement_that_cannot_be_planned_is_listed_with_the_reason(planted: Planted) -> None:
    database = run(planted)
    (gone,) = [n for n in database.not_planned if "FROM gone" in n.statement.text]
    assert 'relation "gone" does not exist' in gone.reason and "42P01" in gone.reason
    assert all("gone" not in p.statement.text for p in database.plans)


def test_a_write_heavy_table_is_flagged(planted: Planted) -> None:
    by_table = {r.table: r for r in run(planted).recommendations}
    assert by_table["events"].write_heavy  # 240,000 rows written: 60,000 inserted, each updated 3 times
    assert not by_table["orders"].write_heavy and not by_table["customers"].write_heavy
    assert by_table["events"].writes_per_second > 0


def test_a_higher_bar_recommends_less(planted: Planted) -> None:
    assert recommended(run(planted, min_saving=0.999999)) == set()


def test_the_prepare_path_leaves_no_prepared_statement(planted: Planted) -> None:
    async def plan() -> tuple[bool, float, list[tuple[object, ...]]]:
        async with await psycopg.AsyncConnection.connect(
            planted.server.dsn(planted.database), autocommit=True
        ) as conn:
            planner = Planner(conn, statement_timeout=5, lock_timeout=1)
            text = "SELECT * FROM orders WHERE customer_id = $1 AND status = $2"
            result = await planner.plan(Statement(1, planted.database, 1, 1.0, text, params=2))
            cur = await conn.execute(b"SELECT name FROM pg_prepared_statements")
            return planner.generic_plan_option, result.cost, await cur.fetchall()

    generic_plan_option, cost, prepared = asyncio.run(plan())
    assert not generic_plan_option  # PostgreSQL 15: PREPARE + force_generic_plan + EXPLAIN EXECUTE
    assert cost > 0 and prepared == []


def test_without_hypopg_the_findings_are_reported_and_the_advice_says_how_to_enable_it(
    pg_server: PostgresServer,
) -> None:
    bare = plant(pg_server, hypopg=False, prefix="nohypopg")
    database = run(bare)
    assert database.hypopg is None and database.recommendations == []
    assert database.hypopg_hint == ENABLE_HYPOPG and "CREATE EXTENSION hypopg" in ENABLE_HYPOPG
    assert any(f.kind == SEQ_SCAN for p in database.plans for f in p.findings)


def test_a_pg_monitor_role_needs_read_access_to_plan(planted: Planted, pg_server: PostgresServer) -> None:
    """pg_monitor (pg_read_all_stats) reads the statements' texts; planning needs SELECT on the tables: without
    it each statement is listed as not planned, with pg_read_all_data it gets the advice."""
    role = f"{planted.database}_monitor"
    pg_server.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'advice-pw' IN ROLE pg_monitor")
    dsn = planted.dsn(user=role, password="advice-pw")
    denied = run(planted, dsn=dsn)
    reasons = [n.reason for n in denied.not_planned if n.statement.text.startswith("SELECT * FROM orders")]
    assert reasons and all("permission denied for table orders" in r for r in reasons)
    assert denied.recommendations == []
    pg_server.execute(f"GRANT pg_read_all_data TO {role}")
    assert recommended(run(planted, dsn=dsn)) == NEEDED


def test_the_cli_prints_the_advice_as_json(
    planted: Planted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "responder.yml"
    raw = raw_config(tmp_path, targets=[{"name": "pg", "dsn": planted.dsn()}], playbooks=[])
    config.write_text(yaml.safe_dump(raw))
    argv = ["advise", "--config", str(config), "--target", "pg", "--database", planted.database]
    assert cli.main([*argv, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    (database,) = document["databases"]
    tables = {(r["table"], tuple(r["columns"])) for r in database["recommendations"]}
    assert tables == {(f"public.{t}", c) for t, c in NEEDED}
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert 'CREATE INDEX CONCURRENTLY ON "public"."orders" ("customer_id");' in text
    assert "WRITE-HEAVY" in text
    assert cli.main(["advise", "--config", str(config), "--target", "nope"]) == 2
    # the program's --config before the subcommand is read too (as `recover`'s)
    before = ["--config", str(config), "advise", "--target", "pg", "--database", planted.database]
    assert cli.main(before) == 0
    assert 'CREATE INDEX CONCURRENTLY ON "public"."orders"' in capsys.readouterr().out


def test_advice_of_an_unreachable_target_is_an_error() -> None:
    advice: Advice = asyncio.run(
        advise(Server("pg", "postgresql://nobody@127.0.0.1:1/none"), Settings(connect_timeout=1))
    )
    assert advice.error is not None and advice.error.startswith("not reachable")


def test_findings_of_nested_loops_and_large_sorts(planted: Planted) -> None:
    """Real generic plans: a nested loop over 120,000 outer rows (hash and merge joins off in the session), a
    sort of the whole of orders over work_mem (1MB in the session), and none for a top-N sort under a LIMIT."""

    async def findings(text: str, params: int, *settings: bytes) -> list[Finding]:
        dsn = planted.server.dsn(planted.database)
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            for setting in settings:
                await conn.execute(setting)
            catalog = await read_catalog(conn)
            plan = await Planner(conn, 5, 1).plan(Statement(1, planted.database, 1, 1.0, text, params))
            return find(plan.root, catalog, 10_000, 10_000)

    join = "SELECT o.id, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.amount > $1"
    found = asyncio.run(findings(join, 1, b"SET enable_hashjoin = off", b"SET enable_mergejoin = off"))
    (loop,) = [f for f in found if f.kind == NESTED_LOOP]
    assert loop.relation == "public.orders" and loop.rows > 10_000 and "outer rows" in loop.detail
    (sort,) = asyncio.run(findings("SELECT * FROM orders ORDER BY amount", 0, b"SET work_mem = '1MB'"))
    assert sort.kind == LARGE_SORT and sort.relation == "public.orders" and sort.filter == "orders.amount"
    assert sort.rows == 120_000 and "over work_mem" in sort.detail
    top_n = asyncio.run(findings("SELECT * FROM orders ORDER BY amount LIMIT $1", 1, b"SET work_mem = '1MB'"))
    assert top_n == []


def test_a_candidate_hypopg_refuses_is_skipped_and_the_rest_advised(pg_server: PostgresServer) -> None:
    """`box` has an `=` operator but no B-tree operator class: hypopg refuses the index, the run goes on."""
    database = f"shapes_{uuid.uuid4().hex[:8]}"
    pg_server.execute(f"CREATE DATABASE {database}")
    pg_server.execute(
        "CREATE EXTENSION hypopg;"
        " CREATE TABLE shapes (id int PRIMARY KEY, b box NOT NULL, owner int NOT NULL);"
        " INSERT INTO shapes SELECT g, box(point(g, g), point(g + 1, g + 1)), g % 5000"
        " FROM generate_series(1, 50000) g; ANALYZE shapes;",
        database,
    )
    with psycopg.connect(pg_server.dsn(database), autocommit=True) as conn:
        for _ in range(3):
            conn.execute(b"SELECT id FROM shapes WHERE b = %s::box", ("(1,1),(2,2)",))
            conn.execute(b"SELECT id FROM shapes WHERE owner = %s", (7,))
    planted = Planted(pg_server, database)
    assert recommended(run(planted)) == {("shapes", ("owner",))}
