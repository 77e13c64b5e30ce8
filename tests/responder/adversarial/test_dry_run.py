"""The dry-run zero-mutation proof (issue 19): with every playbook and schedule in `mode: dry-run`, nothing
outside the responder changes.

Every boto3 client made while a case runs (the app's RDS clients, recover's RDS and Secrets Manager clients)
gets a botocore `before-call.*.*` handler that records each operation before it is sent to moto; not one may be
a mutating operation (anything but Describe*, List*, Get*, Download*). On PostgreSQL: a pg_sleep victim keeps
running and the server log says nothing of a cancel or a termination; the target table's vacuum and analyze
counters do not move. Hooks `touch` a marker file that must never exist.
"""

from __future__ import annotations

import asyncio
import io
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from devtools.motoserver import MotoServer
from devtools.pgserver import PostgresServer
from responder import keys, recover
from responder.aws import is_read
from tests.responder.playbooks.test_terminate_queries import Sessions, sessions, victims_db
from tests.support.drills import (
    REGION,
    all_instances,
    checks,
    connect,
    drill_database,
    drill_params,
    production,
    tagged_instance,
)
from tests.support.responder import AUTH, ClientFactory, ConfigFactory
from tests.support.roles import APP_PASSWORD, APP_ROLE, RESPONDER_PASSWORD, RESPONDER_ROLE
from tests.support.webhook import alert, post_alerts, wait_done

__all__ = ["sessions", "victims_db"]  # fixtures shared with the terminate_queries tests

Client = TestClient[web.Request, web.Application]
SIGNALLED = ("canceling statement due to user request", "terminating connection due to administrator command")


class SentOperations:
    """Every AWS operation sent by a boto3 client created while installed, in order."""

    def __init__(self) -> None:
        self.operations: list[str] = []
        self._lock = threading.Lock()

    def record(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.operations.append(str(model.name))

    @property
    def mutating(self) -> list[str]:
        return [op for op in self.operations if not is_read(op)]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> SentOperations:
    """Record what every boto3 client made from now on sends (the responder makes all of its through a
    boto3 Session)."""
    recorder = SentOperations()
    original = boto3.session.Session.client

    def client(self: boto3.session.Session, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        made.meta.events.register_first("before-call.*.*", recorder.record)
        return made

    monkeypatch.setattr(boto3.session.Session, "client", client)
    return recorder


@pytest.fixture
def drill_db(pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from drill_database(pg_server, monkeypatch)


@pytest.fixture
def vacuum_db(pg_roles: PostgresServer) -> Iterator[str]:
    """`orders` with dead tuples and never analyzed, owned by the responder's role."""
    name = f"dryvac_{uuid.uuid4().hex[:8]}"
    pg_roles.execute(f"CREATE DATABASE {name}")
    pg_roles.execute("CREATE TABLE public.orders (id int)", dbname=name)
    pg_roles.execute("INSERT INTO public.orders SELECT generate_series(1, 1000)", dbname=name)
    pg_roles.execute("DELETE FROM public.orders WHERE id % 2 = 0", dbname=name)
    pg_roles.execute(f"ALTER TABLE public.orders OWNER TO {RESPONDER_ROLE}", dbname=name)
    yield name
    pg_roles.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def maintenance_counters(server: PostgresServer, db: str) -> tuple[Any, ...]:
    rows = server.execute(
        "SELECT last_vacuum, vacuum_count, last_analyze, analyze_count FROM pg_stat_user_tables"
        " WHERE relname = 'orders'",
        db,
    )
    assert rows, "orders has no statistics row"
    return tuple(rows[0])


def log_size(server: PostgresServer) -> int:
    return server.log_path.stat().st_size


def signals_logged_since(server: PostgresServer, offset: int) -> list[str]:
    with server.log_path.open("rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    return [line for line in text.splitlines() if any(s in line for s in SIGNALLED)]


def dry_run_config(
    make_config: ConfigFactory,
    moto: MotoServer,
    pg: PostgresServer,
    rds: dict[str, str],
    victims: str,
    vacuum: str,
    out_dir: Path,
) -> Any:
    def on(name: str) -> dict[str, str]:
        return {"dbidentifier": rds[name], "aws_region": REGION}

    report = {"period": "weekly", "prometheus": "http://127.0.0.1:1", "out_dir": str(out_dir)}
    return make_config(
        mode="dry-run",
        replica_timeout="1s",
        aws={"region": REGION, "endpoint_url": moto.endpoint_url},
        targets=[
            {
                "name": "production",
                "dsn": pg.dsn("postgres", user=RESPONDER_ROLE, password=RESPONDER_PASSWORD),
            }
        ],
        playbooks=[
            {
                "name": "kill",
                "match": {"alertname": "PostgresLongRunningQuery"},
                "action": "terminate_queries",
                "params": {
                    "min_duration": "1s",
                    "grace": "300ms",
                    "states": ["active", "idle in transaction"],
                },
            },
            {"name": "vacuum", "match": {"alertname": "PostgresDeadTuplesHigh"}, "action": "vacuum_analyze"},
            {
                "name": "grow",
                "match": {"alertname": "RDSFreeStorageLow"},
                "action": "grow_storage",
                "params": {"increase_percent": 25, "max_allocated_gib": 1000},
            },
            {
                "name": "scale",
                "match": {"alertname": "RDSCPUHigh"},
                "action": "scale_instance",
                "params": {"ladder": ["db.r6g.large", "db.r6g.xlarge"], "max_class": "db.r6g.xlarge"},
                "require_approval": False,
            },
            {
                "name": "drill",
                "match": {"alertname": "RestoreDrillDue"},
                "action": "restore_drill",
                "params": drill_params(pg),
            },
            {
                "name": "report",
                "match": {"alertname": "MaintenanceReportDue"},
                "action": "maintenance_report",
                "params": report,
            },
        ],
        schedules=[
            {
                "name": "stale-analyze",
                "cron": "0 4 1 * *",
                "action": "vacuum_analyze",
                "target": {"target": "production", "datname": vacuum},
                "params": {"tables": "stale_analyze", "stale_after": "30d"},
            },
            {
                "name": "nightly-kill",
                "cron": "0 2 * * *",
                "action": "terminate_queries",
                "target": {"target": "production", "datname": victims},
                "params": {"min_duration": "1s", "grace": "300ms"},
            },
            {
                "name": "weekly-restore-test",
                "cron": "0 3 * * 0",
                "action": "restore_drill",
                "target": on("drill"),
                "params": drill_params(pg),
            },
            {
                "name": "weekly-grow",
                "cron": "0 5 * * 0",
                "action": "grow_storage",
                "target": on("scheduled-grow"),
                "params": {"increase_percent": 25, "max_allocated_gib": 1000},
            },
            {
                "name": "weekly-scale",
                "cron": "0 5 * * 1",
                "action": "scale_instance",
                "target": on("scheduled-scale"),
                "params": {"ladder": ["db.r6g.large", "db.r6g.xlarge"], "max_class": "db.r6g.xlarge"},
                "require_approval": False,
            },
            {
                "name": "weekly-report",
                "cron": "0 6 * * 1",
                "action": "maintenance_report",
                "target": {"target": "production", "datname": vacuum},
                "params": report,
            },
        ],
    )


async def test_every_action_schedule_sweep_and_tick_in_dry_run_changes_nothing(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    pg_roles: PostgresServer,
    drill_db: str,
    vacuum_db: str,
    sessions: Sessions,
    sent: SentOperations,
    tmp_path: Path,
) -> None:
    prod = production(rds_client)
    rds = {"drill": prod}
    for name in ("grow", "scale", "scheduled-grow", "scheduled-scale"):
        rds[name] = tagged_instance(
            rds_client, f"{name}-{uuid.uuid4().hex[:6]}", {}, DBInstanceClass="db.r6g.large"
        )
    # leaked drills: tagged as drills, expired, in every shape a sweeper in enforce might take for its own
    leaked = [
        tagged_instance(rds_client, f"{prod}-drill-202611220300", {"pgwarden:drill": "1", "pgwarden:expires": "1"}),
        tagged_instance(rds_client, f"leak-{uuid.uuid4().hex[:6]}", {"pgwarden:drill": "2", "pgwarden:expires": "1"}),
    ]  # fmt: skip
    sessions.start("victim", APP_ROLE, APP_PASSWORD, "SELECT pg_sleep(60)", app="t-victim")
    victim = sessions.wait_active(["victim"])["t-victim"]
    await asyncio.sleep(1.2)  # past min_duration
    counters = maintenance_counters(pg_roles, vacuum_db)
    log_offset = log_size(pg_roles)
    client = await client_for(
        dry_run_config(
            make_config, moto_server, pg_roles, rds, sessions.dbname, vacuum_db, tmp_path / "reports"
        )
    )

    alerts = [
        alert("PostgresLongRunningQuery", datname=sessions.dbname),
        alert("PostgresDeadTuplesHigh", datname=vacuum_db, schemaname="public", relname="orders"),
        alert("RDSFreeStorageLow", dbidentifier=rds["grow"], aws_region=REGION),
        alert("RDSCPUHigh", dbidentifier=rds["scale"], aws_region=REGION),
        alert("RestoreDrillDue", dbidentifier=prod, aws_region=REGION),
        alert("MaintenanceReportDue", datname=vacuum_db),
    ]
    decisions = await post_alerts(client, *alerts)
    ids = [d["id"] for d in decisions]
    config = client.app[keys.CONFIG]
    for schedule in config.schedules:
        resp = await client.post(f"/schedules/{schedule.name}/run", headers=AUTH)
        assert resp.status == 202, await resp.text()
        ids.append((await resp.json())["id"])
    rows = [await wait_done(client, i, wait=40) for i in ids]

    sweeper = client.app[keys.DRILLS].sweeper
    assert sweeper is not None
    await sweeper.sweep()
    dispatcher = client.app[keys.DISPATCHER]  # one housekeeping tick, by hand, besides the app's own
    await dispatcher.recover()
    await dispatcher.expire()
    await dispatcher.prune()
    for job in dispatcher.periodic:
        await job()
    await asyncio.sleep(1.0)  # the app's own housekeeping ticks too (replica_timeout 1s)

    by_action = {(r["playbook"], r["action"]): r for r in rows}
    assert len(by_action) == len(alerts) + len(config.schedules), rows
    assert {r["mode"] for r in rows} == {"dry-run"}
    # each action got as far as planning its effects: a dry run, never an early refusal that proves nothing
    outcomes = {r["playbook"]: (r["outcome"], r["error"]) for r in rows}
    assert {o for o, _ in outcomes.values()} == {"dry_run"}, {
        p: o for p, o in outcomes.items() if o[0] != "dry_run"
    }
    planned = [e for r in rows for e in (r["plan"] or {}).get("effects", [])]
    assert planned and {e["state"] for e in planned} == {"dry-run"}, planned
    assert {e.get("operation") for e in planned} >= {"ModifyDBInstance", "RestoreDBInstanceFromDBSnapshot"}

    assert "DescribeDBInstances" in sent.operations  # the recorder saw the app's calls
    assert sent.mutating == [], sent.mutating
    names = {i["DBInstanceIdentifier"] for i in all_instances(rds_client)}
    assert {prod, *leaked} <= names
    assert not any(n.startswith(f"{prod}-drill-2") and n not in leaked for n in names)
    for ident in rds.values():
        instance = rds_client.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        assert (instance["AllocatedStorage"], instance["DBInstanceClass"]) == (100, "db.r6g.large"), ident

    now = sessions.activity()["t-victim"]
    assert (now["pid"], now["state"], now["query_start"]) == (victim["pid"], "active", victim["query_start"])
    assert signals_logged_since(pg_roles, log_offset) == []
    assert maintenance_counters(pg_roles, vacuum_db) == counters


def recovery_config(tmp_path: Path, moto: MotoServer, pg: PostgresServer, marker: Path) -> Path:
    config = {
        "mode": "dry-run",
        "auth": "none",
        "journal": f"sqlite:///{tmp_path / 'journal.db'}",
        "replica_timeout": "1s",
        "aws": {"region": REGION, "endpoint_url": moto.endpoint_url},
        "recovery": {
            "connect": connect(pg),
            "checks": checks(),
            "drain": {"timeout": "2s"},
            "secret": {"secret_id": "prod/db"},
            "hooks": {
                name: ["touch", str(marker)] for name in ("maintenance_on", "restart", "maintenance_off")
            },
        },
    }
    path = tmp_path / "responder.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_recover(path: Path, *flags: str) -> tuple[int, str]:
    out = io.StringIO()
    code = recover.main(["--config", str(path), *flags], out=out, confirm=lambda _: "yes")
    return code, out.getvalue()


def test_recover_in_dry_run_all_steps_swap_and_resume_changes_nothing(
    tmp_path: Path,
    moto_server: MotoServer,
    rds_client: Any,
    pg_server: PostgresServer,
    drill_db: str,
    sent: SentOperations,
) -> None:
    prod = production(rds_client)
    latest = rds_client.describe_db_instances(DBInstanceIdentifier=prod)["DBInstances"][0]
    to = latest["LatestRestorableTime"].strftime("%Y-%m-%dT%H:%M:%SZ")
    marker = tmp_path / "hook-ran"
    path = recovery_config(tmp_path, moto_server, pg_server, marker)
    before = {i["DBInstanceIdentifier"] for i in all_instances(rds_client)}

    code, out = run_recover(path, "--instance", prod, "--to", to, "--dry-run")
    assert code == 0, out
    code, out = run_recover(path, "--instance", prod, "--to", to, "--swap", "--yes", "--dry-run")
    assert code == 0, out
    for step in (
        "RestoreDBInstanceToPointInTime",
        "NewDBInstanceIdentifier",
        "PutSecretValue",
        '"maintenance_off"',
    ):
        assert step in out, out  # all four steps, the swap included, were planned
    # Resuming the finished dry run without --dry-run: refused (a dry run never turns real), nothing sent.
    code, out = run_recover(path, "--resume", "2", "--swap", "--yes")
    assert code == 2 and "nothing to resume" in out, out

    assert "DescribeDBInstances" in sent.operations
    assert sent.mutating == [], sent.mutating
    after = {i["DBInstanceIdentifier"] for i in all_instances(rds_client)}
    assert after == before
    assert not marker.exists()
