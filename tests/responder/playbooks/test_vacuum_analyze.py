"""vacuum_analyze against the real PostgreSQL: it vacuums the named table, and label values stay data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.pgserver import PostgresServer
from tests.support.responder import ClientFactory, ConfigFactory
from tests.support.roles import RESPONDER_PASSWORD, RESPONDER_ROLE
from tests.support.webhook import alert, post_alerts, wait_done

WEIRD = 'odd"; DROP TABLE keepme; --'


@pytest.fixture
def app_db(pg_roles: PostgresServer) -> Iterator[str]:
    name = f"vac_{uuid.uuid4().hex[:8]}"
    pg_roles.execute(f"CREATE DATABASE {name}")
    pg_roles.execute(f"GRANT CREATE ON SCHEMA public TO {RESPONDER_ROLE}", dbname=name)
    for table, owner in (
        ("orders", RESPONDER_ROLE),
        ("keepme", RESPONDER_ROLE),
        (WEIRD, RESPONDER_ROLE),
        ("not_mine", "postgres"),
    ):
        quoted = '"' + table.replace('"', '""') + '"'
        pg_roles.execute(f"CREATE TABLE public.{quoted} (id int)", dbname=name)
        pg_roles.execute(f"INSERT INTO public.{quoted} SELECT generate_series(1, 1000)", dbname=name)
        pg_roles.execute(f"ALTER TABLE public.{quoted} OWNER TO {owner}", dbname=name)
    yield name
    pg_roles.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _last(server: PostgresServer, db: str, table: str) -> tuple[Any, Any]:
    rows = server.execute(
        "SELECT last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = %s", db, (table,)
    )
    return (rows[0][0], rows[0][1]) if rows else (None, None)


def _config(make_config: ConfigFactory, server: PostgresServer) -> Any:
    dsn = server.dsn("postgres", user=RESPONDER_ROLE, password=RESPONDER_PASSWORD)
    return make_config(
        targets=[{"name": "production", "dsn": dsn}],
        playbooks=[
            {
                "name": "vacuum",
                "match": {"alertname": "PostgresDeadTuplesHigh"},
                "action": "vacuum_analyze",
                "params": {"lock_timeout": "1s"},
            }
        ],
    )


async def test_vacuums_the_named_table(
    app_db: str, pg_roles: PostgresServer, make_config: ConfigFactory, client_for: ClientFactory
) -> None:
    client = await client_for(_config(make_config, pg_roles))
    (d,) = await post_alerts(
        client, alert("PostgresDeadTuplesHigh", datname=app_db, schemaname="public", relname="orders")
    )
    row = await wait_done(client, d["id"])
    assert row["outcome"] == "succeeded", row
    assert row["plan"]["statement"] == 'VACUUM (ANALYZE) "public"."orders"'
    assert all(_last(pg_roles, app_db, "orders"))
    assert _last(pg_roles, app_db, "keepme") == (None, None)


async def test_label_values_are_identifiers_not_sql(
    app_db: str, pg_roles: PostgresServer, make_config: ConfigFactory, client_for: ClientFactory
) -> None:
    client = await client_for(_config(make_config, pg_roles))
    attempts = [
        {"relname": "orders; DROP TABLE keepme"},
        {"relname": "keepme", "schemaname": "public; DROP TABLE keepme; --"},
        {"relname": "orders) FULL ("},
        {"relname": 'keepme" FULL'},
    ]
    for i, labels in enumerate(attempts):
        (d,) = await post_alerts(
            client, alert("PostgresDeadTuplesHigh", datname=app_db, fingerprint=f"x{i}", **labels)
        )
        row = await wait_done(client, d["id"])
        assert row["outcome"] == "guardrail" and row["error"] == "no such table", row
    # a table whose real name looks like an attack is vacuumed as that table, quoted
    (d,) = await post_alerts(client, alert("PostgresDeadTuplesHigh", datname=app_db, relname=WEIRD))
    row = await wait_done(client, d["id"])
    assert row["outcome"] == "succeeded", row
    assert row["plan"]["statement"] == 'VACUUM (ANALYZE) "public"."odd""; DROP TABLE keepme; --"'
    assert pg_roles.execute("SELECT count(*) FROM public.keepme", app_db)[0][0] == 1000
    assert _last(pg_roles, app_db, "keepme") == (None, None)
    assert "FULL" not in row["plan"]["statement"].replace(WEIRD.replace('"', '""'), "")


async def test_refuses_a_table_it_may_not_vacuum_and_protected_places(
    app_db: str, pg_roles: PostgresServer, make_config: ConfigFactory, client_for: ClientFactory
) -> None:
    client = await client_for(_config(make_config, pg_roles))
    (d,) = await post_alerts(client, alert("PostgresDeadTuplesHigh", datname=app_db, relname="not_mine"))
    row = await wait_done(client, d["id"])
    assert row["outcome"] == "failed" and "may not vacuum" in row["error"]
    (d,) = await post_alerts(
        client, alert("PostgresDeadTuplesHigh", datname=app_db, schemaname="pg_catalog", relname="pg_class")
    )
    assert (await wait_done(client, d["id"]))["outcome"] == "guardrail"
    (d,) = await post_alerts(client, alert("PostgresDeadTuplesHigh", datname=app_db))
    assert d["outcome"] == "no_target"  # no relname label
