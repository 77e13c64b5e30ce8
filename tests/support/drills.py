"""What the restore_drill and recover tests share: a production instance in moto with backups, and a local
PostgreSQL database that plays the restored instance (`connect.host_override`/`port_override`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.pgserver import PostgresServer

DSN_ENV = "PGWARDEN_TEST_DRILL_DSN"
REGION = "us-east-1"


def drill_database(pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """For a fixture: a database with `users` (2 rows) and `contracts` (one created now), its DSN in DSN_ENV."""
    name = f"drill_{uuid.uuid4().hex[:8]}"
    pg_server.execute(f"CREATE DATABASE {name}")
    pg_server.execute("CREATE TABLE users (id int PRIMARY KEY); INSERT INTO users VALUES (1), (2)", name)
    pg_server.execute("CREATE TABLE contracts (id int, created_at timestamptz DEFAULT now())", name)
    pg_server.execute("INSERT INTO contracts (id) VALUES (1)", name)
    monkeypatch.setenv(DSN_ENV, pg_server.dsn(name))
    yield name
    pg_server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def production(rds_client: Any) -> str:
    """An RDS PostgreSQL instance with automated backups and one manual snapshot; its identifier."""
    identifier = f"prod-{uuid.uuid4().hex[:8]}"
    tagged_instance(rds_client, identifier, {}, DBInstanceClass="db.r6g.large", BackupRetentionPeriod=7)
    rds_client.create_db_snapshot(
        DBInstanceIdentifier=identifier, DBSnapshotIdentifier=f"{identifier}-manual"
    )
    return identifier


def tagged_instance(rds_client: Any, name: str, tags: dict[str, str], **extra: Any) -> str:
    """An RDS PostgreSQL instance in moto with these tags; its identifier."""
    settings = {"DBInstanceClass": "db.t3.medium", "AllocatedStorage": 100, **extra}
    rds_client.create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        MasterUsername="master",
        MasterUserPassword="master-password-1",
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        **settings,
    )
    return name


def checks(min_users: int = 1) -> list[dict[str, Any]]:
    return [
        {"name": "users present", "sql": "SELECT count(*) FROM users", "expect": {"min": min_users}},
        {
            "name": "contracts fresh",
            "sql": "SELECT extract(epoch FROM now() - max(created_at)) FROM contracts",
            "expect": {"max": 93600},
        },
    ]


def connect(pg_server: PostgresServer) -> dict[str, Any]:
    return {"dsn_env": DSN_ENV, "host_override": "127.0.0.1", "port_override": pg_server.port}


def drill_params(pg_server: PostgresServer, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "source": "latest_snapshot",
        "instance_class": "db.t3.medium",
        "wait_timeout": "10m",
        "max_lifetime": "1h",
        "connect": connect(pg_server),
        "checks": checks(),
    }
    params.update(overrides)
    return params


def drill_instances(rds_client: Any, identifier: str) -> list[dict[str, Any]]:
    """The drill instances of `identifier` that moto still has (and are not being deleted)."""
    return [
        i
        for i in all_instances(rds_client)
        if i["DBInstanceIdentifier"].startswith(f"{identifier}-drill-")
        and i["DBInstanceStatus"] != "deleting"
    ]


def all_instances(rds_client: Any) -> list[dict[str, Any]]:
    """Every instance moto has, all pages (the tests share one moto server: often over 100 instances)."""
    pages = rds_client.get_paginator("describe_db_instances").paginate()
    return [i for page in pages for i in page["DBInstances"]]


def weekly_drill(ident: str, params: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The `weekly-restore-test` schedule: a restore_drill of `ident` (in REGION) on Sundays at 03:00 with
    `params`, `fields` on top."""
    target = {"dbidentifier": ident, "aws_region": REGION}
    return {"name": "weekly-restore-test", "cron": "0 3 * * 0", "action": "restore_drill", "target": target,
            "params": params, **fields}  # fmt: skip
