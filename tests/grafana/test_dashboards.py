"""Every Grafana panel returns data from a real Prometheus that scraped pgwarden.

The scenario (one module-scoped fixture): the session's PostgreSQL with a `shop` database (a bloated table with
dead tuples and autovacuum off, an unused index, sequential and index scans, pg_stat_statements entries, two
idle transactions holding locks of several modes and an active backend waiting for a lock); a moto server
with an RDS PostgreSQL instance (automated and manual snapshots, a copy in eu-west-1, a read replica and a
CloudWatch datapoint for every AWS/RDS metric the exporter requests); a physical replication slot holding WAL,
a sequence 85% used and an index a failed CREATE INDEX CONCURRENTLY left invalid; the exporter and the responder
as subprocesses, the responder with an enforced restore drill of the instance run once through
`POST /schedules/<name>/run` (its checks reach the session's PostgreSQL); a real Prometheus (Debian's)
scraping both every second with `release` and `kubernetes_namespace` target labels, as dashboard 9628 expects. Webhooks reach the responder after its
first scrape (a dry-run decision, one waiting for approval, a duplicate, a resolved alert and a malformed
payload), so its counters move inside the rate windows.

Then every target expression of our dashboards and of the community dashboard 9628 (unchanged) is run with
Grafana's variables replaced: regex matchers get the match-all `.*`, equality matchers the value the
dashboard's own variable queries resolve to, and intervals `RATE_WINDOW`. Each must parse and return at least
one sample that is a number (not NaN), except the panels in SKIP (series moto or the session's server cannot
produce), whose expressions must still run. Template variable queries must return values too.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import requests
import yaml

from devtools import dashboards
from devtools.drills import local_restore_drill
from devtools.motoserver import FAKE_CREDENTIALS, MotoServer, MotoUnavailable, start_moto
from devtools.pgserver import PostgresServer
from devtools.processes import NotReady, Process, free_port, spawn, wait_http
from devtools.seeding import create_postgres, put_rds_datapoints
from tests.support.grafana import community_dashboard
from tests.support.services import installed, missing_service

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
PROVISIONING = ROOT / "grafana" / "provisioning"

REGION, BACKUP_REGION = "us-east-1", "eu-west-1"
DB_ID, REPLICA_ID = "orders-db", "orders-db-replica"
RELEASE, NAMESPACE = "pgwarden", "monitoring"
RATE_WINDOW = "1m"  # > 2 scrapes at 1 s, and spans the whole scenario (it is younger than a minute)
INTERVALS = ("$__rate_interval", "$__interval", "$interval", "$__range")
# Expected in Prometheus before the panels are checked (each comes from a different background source).
READY = (
    "pg_table_bloat_bytes",
    "pg_stat_statements_mean_seconds",
    "rds_replica_lag_seconds",
    "rds_latest_cross_region_snapshot_time_seconds",
    "rds_latest_restorable_time_seconds",
    "pgwarden_responder_action_duration_seconds_count",
    "pgwarden_drill_restore_seconds",
    "pgwarden_drill_check_success",
)
# Panels that may have no data in this scenario, with the reason (their queries must still run).
SKIP: dict[str, str] = {
    "Pending changes and maintenance": "moto applies every change at once (no PendingModifiedValues) and has "
    "no DescribePendingMaintenanceActions",
    "Lifecycle deadlines": "moto returns no CertificateDetails, no DescribePendingMaintenanceActions and no "
    "support dates in DescribeDBMajorEngineVersions",
    "Database load (Performance Insights)": "moto does not keep PerformanceInsightsEnabled, so the exporter "
    "never asks for DBLoad*",
    "Checksum failures": "the session's PostgreSQL 15 runs without data checksums (initdb's default), so "
    "checksum_failures is NULL",
}
DRILL = "scenario-restore-drill"
SLOT = "scenario_slot"

CLOUDWATCH_POINTS = {  # metric -> (unit, value); every metric the exporter requests by default
    "FreeStorageSpace": ("Bytes", 40e9),
    "CPUUtilization": ("Percent", 37.5),
    "DatabaseConnections": ("Count", 12.0),
    "FreeableMemory": ("Bytes", 1.5e9),
    "ReadIOPS": ("Count/Second", 120.0),
    "WriteIOPS": ("Count/Second", 80.0),
    "ReadLatency": ("Seconds", 0.0015),
    "WriteLatency": ("Seconds", 0.003),
    "BurstBalance": ("Percent", 98.0),
    "DiskQueueDepth": ("Count", 0.5),
    "MaximumUsedTransactionIDs": ("Count", 2.5e8),
    "TransactionLogsDiskUsage": ("Bytes", 6.4e8),
    "ReplicationSlotDiskUsage": ("Bytes", 1.2e8),
    "SwapUsage": ("Bytes", 3.0e6),
    "ReadThroughput": ("Bytes/Second", 4.0e6),
    "WriteThroughput": ("Bytes/Second", 2.5e6),
    "EBSByteBalance%": ("Percent", 99.0),
    "EBSIOBalance%": ("Percent", 97.0),
}
REPLICA_POINTS = {**CLOUDWATCH_POINTS, "ReplicaLag": ("Seconds", 2.0)}


# ---- structure (no services needed) ---------------------------------------------------------------------


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARD_DIR.glob("*.json"))}


def walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", []))


def test_committed_dashboards_are_the_generators_output() -> None:
    expected = dashboards.outputs()
    committed = {p.name: p.read_text() for p in DASHBOARD_DIR.glob("*.json")}
    assert committed == expected, "grafana/dashboards is stale: run .venv/bin/python -m devtools.dashboards"


# The template variables each dashboard must offer (responder metrics carry no target or datname).
VARIABLES = {
    "pgwarden-overview": {"target", "datname"},
    "pgwarden-queries": {"target", "datname"},
    "pgwarden-tables": {"target", "datname"},
    "pgwarden-rds": {"target", "dbidentifier"},
    "pgwarden-responder": {"instance", "playbook"},
}


def test_dashboards_are_well_formed() -> None:
    found = load_dashboards()
    uids = {d["uid"] for d in found.values()}
    assert uids == set(VARIABLES)
    for name, board in found.items():
        assert board["title"] and board["schemaVersion"] >= 36, name
        assert len(board["uid"]) <= 40 and re.fullmatch(r"[a-z0-9-]+", board["uid"]), name
        variables = {v["name"]: v for v in board["templating"]["list"]}
        wanted = VARIABLES[board["uid"]]
        assert wanted <= set(variables), (name, sorted(variables))
        for var in variables.values():
            assert var["type"] == "query" and var["includeAll"] and var["multi"], (name, var["name"])
            assert var["allValue"] == ".*", (name, var["name"])
            assert var["datasource"] == {"type": "prometheus", "uid": dashboards.DATASOURCE_UID}
            assert var["query"]["query"].startswith("label_values("), (name, var["name"])
        ids: set[int] = set()
        panels = list(walk_panels(board["panels"]))
        assert sum(p["type"] != "row" for p in panels) >= 6, name
        for panel in panels:
            assert panel["id"] not in ids, (name, panel["title"])
            ids.add(panel["id"])
            grid = panel["gridPos"]
            assert set(grid) == {"h", "w", "x", "y"} and grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, (
                panel["title"]
            )
            if panel["type"] == "row":
                continue
            assert panel["type"] in {"timeseries", "stat", "table"}, panel["title"]
            assert panel["datasource"]["uid"] == dashboards.DATASOURCE_UID, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == dashboards.DATASOURCE_UID, panel["title"]
                assert target["expr"] and target["refId"], panel["title"]
                # every variable a panel uses is defined (or is one of Grafana's own)
                for used in re.findall(r"\$\{?(\w+)", target["expr"]):
                    assert used.startswith("__") or used in variables, (panel["title"], used)
        # no two panels overlap
        boxes = [p["gridPos"] for p in panels]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                overlap_x = a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
                overlap_y = a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
                assert not (overlap_x and overlap_y), (name, a, b)


def test_skipped_panels_exist() -> None:
    titles = {p["title"] for board in load_dashboards().values() for p in walk_panels(board["panels"])}
    assert set(SKIP) <= titles, sorted(set(SKIP) - titles)


def test_provisioning_files() -> None:
    sources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert sources["apiVersion"] == 1
    [source] = sources["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == dashboards.DATASOURCE_UID
    assert source["url"].startswith("http") and source["access"] == "proxy"
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "pgwarden.yml").read_text())
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")
    assert {"name", "orgId", "folder"} <= set(provider)


def test_the_community_dashboard_is_read_when_present_and_skips_when_absent(tmp_path: Path) -> None:
    present = tmp_path / "grafana-dashboard-9628-rev8.json"
    present.write_text('{"title": "PostgreSQL Database", "panels": []}')
    assert community_dashboard(present) == {"title": "PostgreSQL Database", "panels": []}
    with pytest.raises(pytest.skip.Exception, match="absent"):
        community_dashboard(tmp_path / "missing.json")


# ---- the scenario ---------------------------------------------------------------------------------------


@dataclass
class Scenario:
    prometheus: str  # base URL
    exporter_instance: str
    responder_instance: str
    logs: Path

    def query(self, expr: str) -> dict[str, Any]:
        resp = requests.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        body: dict[str, Any] = resp.json()
        return body

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        params = {"match[]": match} if match else {}
        resp = requests.get(f"{self.prometheus}/api/v1/label/{label}/values", params=params, timeout=10)
        body = resp.json()
        assert body["status"] == "success", (label, match, body)
        values: list[str] = body["data"]
        return values


def _ready(process: Process, url: str) -> None:
    try:
        wait_http(process, url)
    except NotReady as exc:
        raise AssertionError(str(exc)) from None


def _wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.25)


def build_database(pg: PostgresServer) -> str:
    """A `shop` database: bloat and dead tuples, an unused index, seq and index scans, a vacuumed table."""
    pg.execute("DROP DATABASE IF EXISTS shop WITH (FORCE)")
    pg.execute("CREATE DATABASE shop")
    dsn = pg.dsn("shop")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer int, note text) WITH (autovacuum_enabled = off)"
        )
        conn.execute("INSERT INTO orders SELECT g, g % 500, repeat('x', 80) FROM generate_series(1, 20000) g")
        conn.execute("DELETE FROM orders WHERE id % 2 = 0")  # half the heap is dead tuples
        conn.execute("UPDATE orders SET note = 'updated' WHERE id % 10 = 1")
        conn.execute("ANALYZE orders")  # pg_stats for the bloat estimate; the dead tuples stay
        conn.execute("CREATE TABLE customers (id int PRIMARY KEY, email text)")
        conn.execute(
            "INSERT INTO customers SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 500) g"
        )
        conn.execute("CREATE INDEX customers_email_idx ON customers (email)")  # never scanned: unused
        conn.execute("VACUUM ANALYZE customers")
        for _ in range(3):
            conn.execute("SELECT count(*) FROM orders WHERE note LIKE 'upd%'").fetchall()  # seq scans
            conn.execute("SELECT * FROM orders WHERE id = 101").fetchall()  # index scan
        conn.execute("CREATE SEQUENCE invoice_numbers MAXVALUE 1000")
        conn.execute("SELECT setval('invoice_numbers', 850)")  # 85% of its range used
        conn.execute("CREATE TABLE coupons (code text)")
        conn.execute("INSERT INTO coupons VALUES ('A'), ('A')")
        with contextlib.suppress(psycopg.errors.UniqueViolation):  # a failed CREATE INDEX CONCURRENTLY
            conn.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY coupons_code_idx ON coupons (code)"
            )  # stays, invalid
        for _ in range(2):
            with contextlib.suppress(psycopg.errors.DivisionByZero), conn.transaction():
                conn.execute("SELECT 1 / 0")  # rolled back
        conn.execute("SELECT pg_stat_force_next_flush()")
    return dsn


class HeldLocks:
    """Two idle transactions holding locks (ShareRowExclusive, RowShare, RowExclusive) and an active backend
    waiting for an ExclusiveLock behind them, until `release()`."""

    def __init__(self, dsn: str) -> None:
        self.holder = psycopg.connect(dsn, application_name="scenario-holder")
        self.holder.execute("LOCK TABLE customers IN SHARE ROW EXCLUSIVE MODE")
        self.holder.execute("SELECT * FROM orders WHERE id = 1 FOR UPDATE").fetchall()
        self.writer = psycopg.connect(dsn, application_name="scenario-writer")
        self.writer.execute("UPDATE orders SET note = 'held' WHERE id = 3")
        self.waiter = psycopg.connect(dsn, application_name="scenario-waiter", autocommit=True)
        self.waiter.execute("SET lock_timeout = '120s'")
        self.thread = threading.Thread(target=self._wait, daemon=True)
        self.thread.start()

    def _wait(self) -> None:
        try:
            with self.waiter.transaction():
                self.waiter.execute("LOCK TABLE customers IN EXCLUSIVE MODE")
        except psycopg.Error:
            pass  # cancelled by release()

    def release(self) -> None:
        self.waiter.cancel()
        self.thread.join(10)
        for conn in (self.waiter, self.writer, self.holder):
            conn.close()


def build_aws(moto: MotoServer) -> None:
    """orders-db (gp2, autoscaling, automated + manual snapshots, a copy in eu-west-1), its read replica,
    and a CloudWatch datapoint for every metric the exporter requests."""
    kw: dict[str, Any] = {
        "endpoint_url": moto.endpoint_url,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    east = boto3.client("rds", region_name=REGION, **kw)
    create_postgres(east, DB_ID, MaxAllocatedStorage=500, Tags=[{"Key": "team", "Value": "db"}])
    east.create_db_instance_read_replica(
        DBInstanceIdentifier=REPLICA_ID,
        SourceDBInstanceIdentifier=DB_ID,
        DBInstanceClass="db.t3.medium",
        Tags=[{"Key": "team", "Value": "db"}],
    )
    manual = east.create_db_snapshot(DBInstanceIdentifier=DB_ID, DBSnapshotIdentifier=f"{DB_ID}-manual-1")
    west = boto3.client("rds", region_name=BACKUP_REGION, **kw)
    west.copy_db_snapshot(
        SourceDBSnapshotIdentifier=manual["DBSnapshot"]["DBSnapshotArn"],
        TargetDBSnapshotIdentifier=f"{DB_ID}-copy",
        SourceRegion=REGION,
    )
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, **kw)
    for identifier, points in ((DB_ID, CLOUDWATCH_POINTS), (REPLICA_ID, REPLICA_POINTS)):
        for minutes_ago, factor in ((5, 1.1), (3, 1.0)):
            when = datetime.now(UTC) - timedelta(minutes=minutes_ago)
            scaled = {name: (unit, value * factor) for name, (unit, value) in points.items()}
            put_rds_datapoints(cloudwatch, identifier, when, scaled)


def exporter_config(pg: PostgresServer, monitor_dsn: str) -> dict[str, Any]:
    return {
        "targets": [
            {
                "name": "orders",
                "dsn": pg.dsn("postgres"),
                "rds": {"identifier": DB_ID, "region": REGION, "backup_regions": [BACKUP_REGION]},
            },
            {"name": "analytics", "dsn": monitor_dsn},  # a pg_monitor member, as on RDS
        ],
        "collectors": {
            "activity": {"long_running_thresholds": [1, 60, 300]},
            "xmin_horizon": {"holder_min_age_xids": 0},  # the scenario's idle transactions are young
        },
        "aws": {
            "discover": {"regions": [REGION], "tags": {"team": "db"}, "backup_regions": [BACKUP_REGION]},
            "rds": {"interval": "5s"},
            "snapshots": {"interval": "5s"},
            "cloudwatch": {"interval": "5s", "period": "60s", "delay": "60s", "lookback": "10m"},
            "retries": {"max_attempts": 1, "connect_timeout": "2s", "read_timeout": "5s"},
        },
    }


def responder_config(pg: PostgresServer, moto: MotoServer, journal: Path) -> dict[str, Any]:
    """Dry-run playbooks, and an enforced restore drill of orders-db whose checks reach the session's
    PostgreSQL (moto's endpoints do not resolve) through the DSN in PGWARDEN_DRILL_DSN."""
    return {
        "mode": "dry-run",
        "auth": "none",
        "journal": f"sqlite:///{journal}",
        "targets": [{"name": "orders", "dsn": pg.dsn("postgres")}],
        "aws": {"region": REGION, "endpoint_url": moto.endpoint_url},
        "playbooks": [
            {
                "name": "kill-long-queries",
                "match": {"alertname": "PostgresLongRunningQuery"},
                "action": "terminate_queries",
                "params": {"min_duration": "5m"},
            },
            {
                "name": "scale-up-on-cpu",
                "match": {"alertname": "RDSCPUHigh"},
                "action": "scale_instance",
                "params": {"ladder": ["db.t3.medium", "db.r6g.large"], "max_class": "db.r6g.large"},
                "require_approval": True,
            },
        ],
        "schedules": [local_restore_drill(DRILL, DB_ID, REGION, "PGWARDEN_DRILL_DSN", pg.port)],
    }


def prometheus_config(exporter_port: int, responder_port: int) -> dict[str, Any]:
    labels = {"release": RELEASE, "kubernetes_namespace": NAMESPACE}
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        # the project's rules: some panels read the recording rules the alerts are built on
        "rule_files": [str(path) for path in sorted((ROOT / "alerts").glob("*.rules.yml"))],
        "scrape_configs": [
            {
                "job_name": "pgwarden-exporter",
                "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"], "labels": labels}],
            },
            {
                "job_name": "pgwarden-responder",
                "static_configs": [{"targets": [f"127.0.0.1:{responder_port}"], "labels": labels}],
            },
        ],
    }


def alert(alertname: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": alertname, "severity": "critical", **labels},
        "annotations": {"summary": "scenario"},
        "startsAt": "2026-11-24T03:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": uuid.uuid4().hex[:16],
    }


def send_webhooks(url: str) -> None:
    """A dry-run decision, one waiting for approval, a redelivery (duplicate), a resolved alert, a 400."""
    long_running = alert("PostgresLongRunningQuery", target="orders", datname="shop")
    cpu = alert("RDSCPUHigh", dbidentifier=DB_ID, aws_region=REGION)
    payloads: list[dict[str, Any]] = [
        {"alerts": [long_running, cpu]},
        {"alerts": [long_running]},  # Alertmanager's repeat: a duplicate
        {"alerts": [alert("PostgresDeadlocks", status="resolved", target="orders")]},
    ]
    for body in payloads:
        full = {
            "version": "4",
            "status": "firing",
            "receiver": "pgwarden-responder",
            "groupKey": "{}:{}",
            "truncatedAlerts": 0,
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            **body,
        }
        resp = requests.post(url, json=full, timeout=10)
        assert resp.status_code == 202, resp.text
    assert requests.post(url, data=b"{not json", timeout=10).status_code == 400


@pytest.fixture(scope="module")
def scenario(
    pg_server: PostgresServer, monitor_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    prometheus = installed("prometheus", "prometheus")
    tmp = tmp_path_factory.mktemp("grafana")
    cleanups: list[Callable[[], object]] = []
    try:
        try:
            moto = start_moto(log_path=tmp / "moto.log")
        except MotoUnavailable as exc:
            missing_service(f"moto server ({exc})")
            raise AssertionError("unreachable") from exc
        cleanups.append(moto.stop)
        build_aws(moto)
        shop = build_database(pg_server)
        cleanups.append(lambda: pg_server.execute("DROP DATABASE IF EXISTS shop WITH (FORCE)"))
        pg_server.execute(f"SELECT pg_create_physical_replication_slot('{SLOT}', true)")  # reserves WAL now
        cleanups.append(lambda: pg_server.execute(f"SELECT pg_drop_replication_slot('{SLOT}')"))
        locks = HeldLocks(shop)
        cleanups.append(locks.release)

        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(FAKE_CREDENTIALS)
        env.update(
            AWS_ENDPOINT_URL=moto.endpoint_url,
            AWS_CONFIG_FILE=str(tmp / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-credentials"),
            PGWARDEN_DRILL_DSN=pg_server.dsn("postgres"),
        )
        (tmp / "exporter.yml").write_text(yaml.safe_dump(exporter_config(pg_server, monitor_dsn)))
        exporter_port = free_port()
        exporter = spawn(
            "exporter",
            [
                sys.executable,
                "-m",
                "exporter",
                "--config",
                str(tmp / "exporter.yml"),
                "--web.listen-address",
                f"127.0.0.1:{exporter_port}",
            ],
            tmp / "exporter.log",
            env,
        )
        cleanups.append(exporter.stop)
        (tmp / "responder.yml").write_text(
            yaml.safe_dump(responder_config(pg_server, moto, tmp / "journal.db"))
        )
        responder_port = free_port()
        responder = spawn(
            "responder",
            [
                sys.executable,
                "-m",
                "responder",
                "--config",
                str(tmp / "responder.yml"),
                "--web.listen-address",
                f"127.0.0.1:{responder_port}",
            ],
            tmp / "responder.log",
            env,
        )
        cleanups.append(responder.stop)
        _ready(exporter, f"http://127.0.0.1:{exporter_port}/healthz")
        _ready(responder, f"http://127.0.0.1:{responder_port}/healthz")

        (tmp / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(exporter_port, responder_port)))
        prom_port = free_port()
        prom = spawn(
            "prometheus",
            [
                prometheus,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            tmp / "prometheus.log",
        )
        cleanups.append(prom.stop)
        base = f"http://127.0.0.1:{prom_port}"
        _ready(prom, f"{base}/-/ready")
        found = Scenario(base, f"127.0.0.1:{exporter_port}", f"127.0.0.1:{responder_port}", tmp)

        def has(expr: str) -> bool:
            body = found.query(expr)
            return body.get("status") == "success" and bool(body["data"]["result"])

        # the responder's counters must start before the webhooks, so rates see them move
        _wait_for(
            "the first scrapes", lambda: has('count(up == 1) == 2 and count(pg_up{target="orders"} == 1)'), 20
        )
        send_webhooks(f"http://127.0.0.1:{responder_port}/webhook")
        drill = requests.post(f"http://127.0.0.1:{responder_port}/schedules/{DRILL}/run", timeout=10)
        assert drill.status_code == 202, drill.text
        for name in READY:
            _wait_for(f"{name} in Prometheus", partial(has, name), 30)
        # labelled series start at their first value: a second round makes the rates of those move too
        send_webhooks(f"http://127.0.0.1:{responder_port}/webhook")
        _wait_for(
            "a second action run in Prometheus",
            lambda: has("increase(pgwarden_responder_action_duration_seconds_count[1m]) > 0"),
            15,
        )
        # a few scrapes after the webhooks' effects, so rates and irate have two samples with a change
        _wait_for(
            "5 more scrapes", lambda: has("count_over_time(pgwarden_responder_journal_up[5s]) >= 5"), 15
        )
        time.sleep(2)
        yield found
    finally:
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception as exc:  # keep stopping the rest
                print(f"cleanup failed: {exc!r}", file=sys.stderr)


# ---- evaluating panels ----------------------------------------------------------------------------------

MATCHER = re.compile(r'(=~|!~|!=|=)\s*"\$\{?(\w+)(?::\w+)?\}?"')


def substitute(expr: str, values: dict[str, str]) -> str:
    """Grafana's variables in a PromQL expression: intervals become RATE_WINDOW, regex matchers `.*`
    (the dashboards' allValue), equality matchers the variable's resolved value."""
    for name in INTERVALS:
        expr = expr.replace(name, RATE_WINDOW)

    def matcher(m: re.Match[str]) -> str:
        op, name = m.group(1), m.group(2)
        if op in ("=~", "!~"):
            return f'{op}".*"'
        if name not in values:
            raise AssertionError(f"no value for ${name} in an equality matcher: {expr}")
        return f'{op}"{values[name]}"'

    expr = MATCHER.sub(matcher, expr)
    assert "$" not in expr, f"unreplaced variable in {expr}"
    return expr


def has_number(result: dict[str, Any]) -> bool:
    data = result["data"]
    if data["resultType"] == "scalar":
        return not math.isnan(float(data["result"][1]))
    return any(not math.isnan(float(s["value"][1])) for s in data["result"])


def check_exprs(
    sc: Scenario, exprs: list[tuple[str, str]], values: dict[str, str], patience: float = 15
) -> list[str]:
    """(title, expr) pairs -> failure messages; an expression without data is retried for `patience` s."""
    pending = list(exprs)
    failures: list[str] = []
    deadline = time.monotonic() + patience
    while pending:
        retry = []
        for title, raw in pending:
            expr = substitute(raw, values)
            body = sc.query(expr)
            if body.get("status") != "success":
                failures.append(f"{title}: does not parse/run: {body.get('error')}\n    {expr}")
            elif not has_number(body):
                retry.append((title, raw))
        if not retry:
            break
        if time.monotonic() > deadline:
            for title, raw in retry:
                failures.append(f"{title}: no data\n    {substitute(raw, values)}")
            break
        pending = retry
        time.sleep(1)
    return failures


def panel_exprs(board: dict[str, Any], skipped: bool = False) -> list[tuple[str, str]]:
    """(title, expr) of the panels to prove, or with `skipped` of those in SKIP."""
    out = []
    for panel in walk_panels(board["panels"]):
        if (panel["title"] in SKIP) != skipped:
            continue
        for target in panel.get("targets", []):
            if target.get("expr"):
                out.append(
                    (f"{board['title']} / {panel['title']} [{target.get('refId', '?')}]", target["expr"])
                )
    return out


LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?(\w+)\)$")


def variable_values(sc: Scenario, query: str, regex: str, resolved: dict[str, str]) -> list[str]:
    """What Grafana offers for a Prometheus query variable: label_values(...) or query_result(...)."""
    query = query.strip()
    if m := LABEL_VALUES.match(query):
        match, label = m.group(1), m.group(2)
        return sc.label_values(label, substitute(match, resolved) if match else None)
    if query.startswith("query_result(") and query.endswith(")"):
        body = sc.query(substitute(query[len("query_result(") : -1], resolved))
        assert body["status"] == "success", (query, body)
        lines = []
        for series in body["data"]["result"]:
            metric = dict(series["metric"])
            name = metric.pop("__name__", "")
            labels = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()))
            lines.append(f"{name}{{{labels}}} {series['value'][1]} {series['value'][0]}")
        if not regex:
            return lines
        pattern = re.compile(regex.strip("/"))
        return sorted({m.group(1) for line in lines if (m := pattern.search(line))})
    raise AssertionError(f"unsupported variable query {query!r}")


def resolve_variables(sc: Scenario, board: dict[str, Any], failures: list[str]) -> dict[str, str]:
    """Each query variable in order (later ones may use earlier ones): it must offer values; the first is
    what an equality matcher gets."""
    resolved: dict[str, str] = {}
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue  # datasource and interval variables are no queries
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        values = variable_values(sc, query, var.get("regex", ""), resolved)
        if not values:
            failures.append(f"{board['title']}: variable ${var['name']} offers no values: {query}")
            continue
        resolved[var["name"]] = values[0]
    return resolved


@pytest.mark.parametrize("name", sorted(p.name for p in DASHBOARD_DIR.glob("*.json")))
@pytest.mark.slow
def test_every_panel_returns_data(scenario: Scenario, name: str) -> None:
    board = json.loads((DASHBOARD_DIR / name).read_text())
    failures: list[str] = []
    values = resolve_variables(scenario, board, failures)
    failures += check_exprs(scenario, panel_exprs(board), values)
    for title, raw in panel_exprs(board, skipped=True):  # no data expected, but they must run
        body = scenario.query(substitute(raw, values))
        if body.get("status") != "success":
            failures.append(f"{title}: does not parse/run: {body.get('error')}")
    assert not failures, "\n".join(failures) + f"\n(logs in {scenario.logs})"


@pytest.mark.slow
def test_community_dashboard_9628_returns_data(scenario: Scenario) -> None:
    board = community_dashboard()
    failures: list[str] = []
    values = resolve_variables(scenario, board, failures)
    assert values.get("namespace") == NAMESPACE and values.get("release") == RELEASE, values
    assert values.get("instance") == scenario.exporter_instance, values
    exprs = panel_exprs(board)
    assert len(exprs) >= 40, len(exprs)
    failures += check_exprs(scenario, exprs, values)
    assert not failures, "\n".join(failures) + f"\n(logs in {scenario.logs})"


@pytest.mark.slow
def test_the_check_catches_bad_and_empty_expressions(scenario: Scenario) -> None:
    """The checker itself: a syntax error, an absent metric, a filter that leaves nothing and a NaN all fail."""
    exprs = [
        ("syntax", "sum by (target (pg_up)"),
        ("absent", 'pg_no_such_metric{target=~"$target"}'),
        ("filtered", 'pg_up{target=~"$target"} == 42'),
        ("nan", "pg_up - pg_up + NaN"),
        ("fine", 'pg_up{target=~"$target"}'),
    ]
    failures = check_exprs(scenario, exprs, {}, patience=0)
    assert [f.split(":")[0] for f in failures] == ["syntax", "absent", "filtered", "nan"], failures
    assert "does not parse" in failures[0]
    with pytest.raises(AssertionError, match="no value for \\$instance"):
        substitute('pg_up{instance="$instance"}', {})
