"""vacuum_analyze with `tables: stale_analyze`, as a schedule runs it: every table of the database whose last
analyze is older than `stale_after`, none else, against the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.pgserver import PostgresServer
from tests.support.responder import AUTH, ClientFactory, ConfigFactory
from tests.support.roles import RESPONDER_PASSWORD, RESPONDER_ROLE
from tests.support.webhook import wait_done


@pytest.fixture
def stale_db(pg_roles: PostgresServer) -> Iterator[str]:
    """`fresh` (analyzed now), `stale_a`, `stale_b` (never analyzed), `not_mine` (the role may not vacuum it).
    Ten rows each: far below autovacuum's analyze threshold, so autovacuum leaves them alone."""
    name = f"stale_{uuid.uuid4().hex[:8]}"
    pg_roles.execute(f"CREATE DATABASE {name}")
    for table, owner in (("fresh", RESPONDER_ROLE), ("stale_a", RESPONDER_ROLE), ("stale_b", RESPONDER_ROLE),
                         ("not_mine", "postgres")):  # fmt: skip
        pg_roles.execute(f"CREATE TABLE public.{table} (id int)", dbname=name)
        pg_roles.execute(f"INSERT INTO public.{table} SELECT generate_series(1, 10)", dbname=name)
        pg_roles.execute(f"ALTER TABLE public.{table} OWNER TO {owner}", dbname=name)
    pg_roles.execute("ANALYZE public.fresh", dbname=name)
    yield name
    pg_roles.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _analyzed(server: PostgresServer, db: str) -> set[str]:
    rows = server.execute("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL", db)
    return {str(r[0]) for r in rows}


def _config(make_config: ConfigFactory, server: PostgresServer, db: str, **extra: Any) -> Any:
    return make_config(
        targets=[
            {
                "name": "production",
                "dsn": server.dsn("postgres", user=RESPONDER_ROLE, password=RESPONDER_PASSWORD),
            }
        ],
        playbooks=[],
        schedules=[
            {
                "name": "monthly-analyze",
                "cron": "0 4 1 * *",
                "action": "vacuum_analyze",
                "target": {"target": "production", "datname": db},
                "params": {"tables": "stale_analyze", "stale_after": "30d"},
                **extra,
            }
        ],
    )


async def _run(client: Any) -> dict[str, Any]:
    resp = await client.post("/schedules/monthly-analyze/run", headers=AUTH)
    assert resp.status == 202, await resp.text()
    return await wait_done(client, (await resp.json())["id"])


async def test_stale_tables_only_are_vacuumed(
    make_config: ConfigFactory, client_for: ClientFactory, pg_roles: PostgresServer, stale_db: str
) -> None:
    client = await client_for(_config(make_config, pg_roles, stale_db))
    row = await _run(client)
    assert row["outcome"] == "succeeded", row
    assert [t["table"] for t in row["plan"]["tables"]] == ["public.stale_a", "public.stale_b"]
    assert row["result"]["ran"] == [
        'VACUUM (ANALYZE) "public"."stale_a"',
        'VACUUM (ANALYZE) "public"."stale_b"',
    ]
    assert _analyzed(pg_roles, stale_db) == {"fresh", "stale_a", "stale_b"}
    row = await _run(client)  # now nothing is stale
    assert row["outcome"] == "succeeded" and row["result"]["ran"] == []


async def test_stale_selection_dry_run_lists_and_touches_nothing(
    make_config: ConfigFactory, client_for: ClientFactory, pg_roles: PostgresServer, stale_db: str
) -> None:
    client = await client_for(_config(make_config, pg_roles, stale_db, mode="dry-run"))
    row = await _run(client)
    assert row["outcome"] == "dry_run", row
    assert len(row["result"]["would_run"]) == 2
    assert _analyzed(pg_roles, stale_db) == {"fresh"}


async def test_without_the_selection_a_scheduled_vacuum_names_no_table(
    make_config: ConfigFactory, client_for: ClientFactory, pg_roles: PostgresServer, stale_db: str
) -> None:
    config = _config(make_config, pg_roles, stale_db)
    schedule = config.schedules[0].schema.model_dump()
    schedule["params"] = {}
    client = await client_for(
        make_config(targets=config.schema.model_dump()["targets"], playbooks=[], schedules=[schedule])
    )
    row = await _run(client)
    assert row["outcome"] == "guardrail" and row["error"] == "no such table"
    assert _analyzed(pg_roles, stale_db) == {"fresh"}
