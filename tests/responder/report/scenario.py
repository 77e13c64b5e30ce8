"""A small real scenario for the report: a PostgreSQL database with a long query, an unused index and a pair
of duplicate indexes; the real exporter; a real Prometheus scraping it every second; and a restore drill
journaled through the journal API (the shape the scheduler's `restore_drill` writes).

`report_scenario` is session-scoped: the report tests and the console's browser test share one."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.pgserver import PostgresServer, free_port
from devtools.processes import NotReady, spawn, wait_http
from devtools.services import Service, ServiceUnavailable, binary, start_exporter
from responder.core import RdsTarget
from responder.decision import AlertTrigger, Decision
from responder.journal import Claim, Journal, open_store
from responder.outcomes import Outcome, State
from tests.support.postgres import MONITOR_PASSWORD, MONITOR_ROLE
from tests.support.services import missing_service

LONG_QUERY = "SELECT pg_sleep(1.2) AS rpt_long_query"
# A statement whose text is hostile to a report: markup, a Markdown table's cell break, a line break.
ROLE_PASSWORD = "rpt-Secret-pw-0451"
ODD_QUERY = 'SELECT pg_sleep(1.1) AS "<i>rpt|odd</i>",\n       1 AS rpt_second_line'
UNUSED_INDEX = "orders_note_idx"
DUPLICATE_INDEX = "orders_customer_copy_idx"
DRILL_INSTANCE = "orders-db"
DRILL = {
    "restore_seconds": 412.5,
    "recovery_point_age_seconds": 287.0,
    "checks": [
        {"name": "orders rows", "value": 5000, "expect": ">= 1", "passed": True},
        {"name": "latest order age", "value": 287, "expect": "< 3600", "passed": True},
    ],
    "dbidentifier": DRILL_INSTANCE,
    "source": "snapshot rds:orders-db-2026-11-29-03-00",
}


@dataclass
class ReportScenario:
    prometheus: str
    journal: Path
    config: Path  # a responder configuration naming the journal and the target, for `report --config`
    database: str
    target_dsn: str
    workdir: Path


def _prometheus_query(url: str, expr: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(
        f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=10
    ) as r:
        return list(json.load(r)["data"]["result"])


def prometheus_has(url: str, expr: str) -> bool:
    """Whether `expr` has a result in the Prometheus at `url` now."""
    return bool(_prometheus_query(url, expr))


def start_prometheus(workdir: Path, targets: list[str]) -> Service:
    """Prometheus scraping `targets` every second, no rules, no Alertmanager."""
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "pgwarden", "static_configs": [{"targets": targets}]}],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    argv = [binary("prometheus"), f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}", f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    process = spawn("prometheus", argv, workdir / "prometheus.log")
    try:
        wait_http(process, f"http://127.0.0.1:{port}/-/ready")
    except NotReady as exc:
        process.stop()
        raise ServiceUnavailable(f"prometheus not ready: {exc}") from None
    return Service("prometheus", process, port, "/-/ready")


async def journal_drill(path: Path, result: dict[str, object], outcome: Outcome = Outcome.SUCCEEDED) -> int:
    """A finished restore drill in the journal, written through the journal's own operations."""
    journal = Journal(open_store(f"sqlite:///{path}"), f"scenario:{uuid.uuid4().hex[:6]}")
    await journal.start()
    try:
        key = f"weekly-drill|{uuid.uuid4().hex}"
        trigger = AlertTrigger(
            "schedule:weekly-drill", uuid.uuid4().hex[:16], "2026-11-29T03:00:00Z", "firing", {}
        )
        target = RdsTarget(str(result.get("dbidentifier")), "us-east-1")
        (recorded,) = await journal.record([
            Decision(
                trigger, State.QUEUED, playbook="weekly-drill", action="restore_drill", mode="enforce",
                target=target, dedup_key=key,
            )
        ])  # fmt: skip
        claimed = await journal.claim(Claim(recorded.action_id, "weekly-drill", target.key, 0, None))
        assert claimed is not None and claimed.state == State.RUNNING, claimed
        await journal.finish(
            recorded.action_id, outcome, result, None if outcome is Outcome.SUCCEEDED else "a check failed"
        )
        return recorded.action_id
    finally:
        await journal.close()


def create_database(pg: PostgresServer, name: str, statements: Iterable[str]) -> None:
    """CREATE DATABASE `name`, then each statement in it."""
    pg.execute(f"CREATE DATABASE {name}")
    for sql in statements:
        pg.execute(sql, dbname=name)


def _prepare_database(pg: PostgresServer, name: str) -> None:
    create_database(
        pg,
        name,
        (
            "CREATE TABLE orders (id serial PRIMARY KEY, customer int NOT NULL, note text)",
            "INSERT INTO orders (customer, note) SELECT g % 97, 'note ' || g FROM generate_series(1, 5000) g",
            f"CREATE INDEX {UNUSED_INDEX} ON orders (note)",  # never used by any query
            "CREATE INDEX orders_customer_idx ON orders (customer)",
            f"CREATE INDEX {DUPLICATE_INDEX} ON orders (customer)",  # the same columns again
            "ANALYZE orders",
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",  # the report reads the statements' text here
            f"CREATE ROLE {name}_owner PASSWORD '{ROLE_PASSWORD}'",  # kept as written by pg_stat_statements
            f"GRANT SELECT ON orders TO {MONITOR_ROLE}",
        ),
    )
    for _ in range(2):
        pg.execute(LONG_QUERY, dbname=name)
    pg.execute(ODD_QUERY, dbname=name)


def exporter_and_prometheus(
    workdir: Path, pg_server: PostgresServer, target: str, database: str, collectors: dict[str, Any]
) -> list[Service]:
    """The real exporter on one database of the server (as the monitoring role), and a real Prometheus
    scraping it every second: [exporter, prometheus]. A missing binary skips (fails in CI)."""
    env = f"{target.upper()}_EXPORTER_DSN"
    services: list[Service] = []
    try:
        services.append(
            start_exporter(
                workdir,
                {
                    "targets": [{"name": target, "dsn_env": env, "databases": {"include": [database]}}],
                    "collectors": collectors,
                },
                {env: pg_server.dsn("postgres", MONITOR_ROLE, MONITOR_PASSWORD)},
            )
        )
        services.append(start_prometheus(workdir, [f"127.0.0.1:{services[0].port}"]))
    except ServiceUnavailable as exc:
        for s in services:
            s.stop()
        if "installed" in str(exc):
            missing_service(str(exc))
        raise
    return services


def wait_until_seen(
    prometheus: Service, exporter: Service, ready: tuple[str, ...], within: float = 60
) -> None:
    """Until every expression of `ready` has a result in Prometheus (AssertionError naming those that have
    none after `within` seconds)."""
    deadline = time.monotonic() + within
    while missing := [expr for expr in ready if not _prometheus_query(prometheus.url, expr)]:
        assert time.monotonic() < deadline, f"Prometheus never saw {missing}:\n{exporter.log_tail()}"
        time.sleep(0.5)


@pytest.fixture(scope="session")
def report_scenario(
    pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReportScenario]:
    workdir = tmp_path_factory.mktemp("report-scenario")
    database = f"rpt_{uuid.uuid4().hex[:8]}"
    _prepare_database(pg_server, database)
    target_dsn = pg_server.dsn(database, MONITOR_ROLE, MONITOR_PASSWORD)
    collectors = {
        "statements": {"include_query": True},
        "indexes": {"ttl": "1s"},
        "tables": {"ttl": "1s"},
        "bloat": {"ttl": "1s"},
        "xmin_horizon": {"holder_min_age_xids": 0},  # its holders are tens of transactions old
    }
    # its own database only: it runs for the whole session, and other tests count the sessions in theirs
    # (recover's drain)
    services = exporter_and_prometheus(workdir, pg_server, "rpt", database, collectors)
    exporter, prometheus = services
    ready = (
        f'pg_index_unused{{datname="{database}",indexrelname="{UNUSED_INDEX}"}} == 1',
        'pg_stat_statements_query_info{query=~".*rpt_long_query.*"}',
        "pg_settings_max_connections",
        "pg_stat_activity_count",
    )
    wait_until_seen(prometheus, exporter, ready)
    journal = workdir / "journal.db"
    asyncio.run(journal_drill(journal, DRILL))
    config = workdir / "responder.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "token": "report-scenario-token",
                "journal": f"sqlite:///{journal}",
                "targets": [{"name": "rpt", "dsn": target_dsn}],
            }
        )
    )
    yield ReportScenario(prometheus.url, journal, config, database, target_dsn, workdir)
    for s in reversed(services):
        s.stop()
