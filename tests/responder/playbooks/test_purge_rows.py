"""purge_rows against the real PostgreSQL, as the table's owner (no superuser): dry-run counts and deletes
nothing; enforce deletes old rows in batches up to the cap, skips rows the application holds; the table is a
name, never SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from aiohttp.test_utils import TestClient

from devtools.pgserver import PostgresServer
from responder.config import ConfigError
from tests.support.migrator import MIGRATOR, MIGRATOR_PASSWORD, as_migrator, migrator_db, quoted
from tests.support.responder import ClientFactory, ConfigFactory
from tests.support.webhook import alert, post_alerts, wait_done

TABLE = 'e"vents; DROP TABLE keepme'


@pytest.fixture
def db(pg_server: PostgresServer) -> Iterator[str]:
    """`events`: 1000 rows 100 days old and 500 from today; `keepme` stays."""
    with migrator_db(pg_server) as name:
        for table in ("public.events", f"public.{quoted(TABLE)}"):
            as_migrator(
                pg_server, name, f"CREATE TABLE {table} (id bigint PRIMARY KEY, created_at timestamptz)"
            )
            as_migrator(
                pg_server,
                name,
                f"INSERT INTO {table} SELECT g, now() - CASE WHEN g <= 1000 THEN interval '100 days'"
                " ELSE interval '1 hour' END FROM generate_series(1, 1500) g",
            )
        as_migrator(pg_server, name, "CREATE TABLE public.keepme (id int PRIMARY KEY)")
        yield name


def _config(make_config: ConfigFactory, server: PostgresServer, db: str, mode: str, **params: Any) -> Any:
    return make_config(
        targets=[{"name": "production", "dsn": server.dsn(db, user=MIGRATOR, password=MIGRATOR_PASSWORD)}],
        playbooks=[
            {
                "name": "purge",
                "match": {"alertname": "RDSFreeStorageLow"},
                "action": "purge_rows",
                "mode": mode,
                "params": {"table": "public.events", "older_than": "30d", "batch_size": 300, **params},
            }
        ],
    )


async def _purge(client: TestClient[Any, Any]) -> dict[str, Any]:
    (d,) = await post_alerts(client, alert("RDSFreeStorageLow", fingerprint=uuid.uuid4().hex[:16]))
    return await wait_done(client, d["id"])


def _left(server: PostgresServer, db: str, table: str = "public.events") -> int:
    return int(as_migrator(server, db, f"SELECT count(*) FROM {table}")[0][0])


async def test_dry_run_counts_each_batch_and_deletes_nothing(
    pg_server: PostgresServer, db: str, make_config: ConfigFactory, client_for: ClientFactory
) -> None:
    client = await client_for(_config(make_config, pg_server, db, "dry-run"))
    row = await _purge(client)
    assert row["outcome"] == "dry_run", row
    assert row["result"] == {"would_delete": 1000, "batches": 4, "capped": False, "table": "public.events"}
    effects = row["plan"]["effects"]
    assert [(e["state"], e["params"]["rows"]) for e in effects] == [("dry-run", 300)] * 3 + [("dry-run", 100)]
    assert effects[0]["statement"].startswith(
        'WITH batch AS MATERIALIZED (SELECT "id" FROM "public"."events"'
    )
    assert effects[0]["statement"].endswith(
        'DELETE FROM "public"."events" WHERE "id" IN (SELECT "id" FROM batch)'
    )
    assert _left(pg_server, db) == 1500


async def test_enforce_deletes_old_rows_in_batches_up_to_the_cap(
    pg_server: PostgresServer, db: str, make_config: ConfigFactory, client_for: ClientFactory
) -> None:
    client = await client_for(_config(make_config, pg_server, db, "enforce", max_rows=700, pause="0s"))
    row = await _purge(client)
    assert row["outcome"] == "succeeded", row
    assert row["result"] == {"deleted": 700, "batches": 3, "capped": True, "table": "public.events"}
    assert [e["state"] for e in row["plan"]["effects"]] == ["done"] * 3
    assert _left(pg_server, db) == 800
    # The next run takes the rest (and only old rows); a row the application holds is skipped, not waited for.
    dsn = pg_server.dsn(db, user=MIGRATOR, password=MIGRATOR_PASSWORD)
    with psycopg.connect(dsn) as app:
        app.execute("SELECT 1 FROM public.events WHERE id = 999 FOR UPDATE")
        row = await _purge(client)
        assert row["outcome"] == "succeeded", row
        assert row["result"]["deleted"] == 299
        app.rollback()
    assert as_migrator(pg_server, db, "SELECT min(id), count(*) FROM public.events WHERE id <> 999") == [
        (1001, 500)
    ]
    assert _left(pg_server, db, "public.keepme") == 0


async def test_the_table_is_a_name(
    pg_server: PostgresServer, db: str, make_config: ConfigFactory, client_for: ClientFactory
) -> None:
    client = await client_for(
        _config(make_config, pg_server, db, "enforce", table=f"public.{quoted(TABLE)}", pause="0s")
    )
    row = await _purge(client)
    assert row["outcome"] == "succeeded", row
    assert row["result"]["deleted"] == 1000
    assert _left(pg_server, db, f"public.{quoted(TABLE)}") == 500
    assert as_migrator(pg_server, db, "SELECT to_regclass('public.keepme') IS NOT NULL") == [(True,)]


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"table": "public.events; DROP TABLE public.keepme"}, "';'"),
        ({"table": "public.events WHERE true"}, "more than one expression"),
        ({"older_than": "0s"}, "greater than 0"),
        ({"max_rows": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_params_are_config_errors(
    pg_server: PostgresServer, db: str, make_config: ConfigFactory, params: dict[str, Any], why: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(make_config, pg_server, db, "enforce", **params)
    assert why in str(caught.value.errors), caught.value.errors


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"table": "public.absent"}, "no table public.absent"),
        ({"column": "nope"}, "has no column 'nope'"),
        ({"column": "id"}, "not a date or timestamp"),
        ({"table": "public.keepme", "column": "id"}, "not a date or timestamp"),
    ],
)
async def test_tables_it_cannot_purge_are_refused(
    pg_server: PostgresServer,
    db: str,
    make_config: ConfigFactory,
    client_for: ClientFactory,
    params: dict[str, Any],
    why: str,
) -> None:
    client = await client_for(_config(make_config, pg_server, db, "enforce", **params))
    row = await _purge(client)
    assert row["outcome"] == "guardrail" and why in row["error"], row
    assert _left(pg_server, db) == 1500
