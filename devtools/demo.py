"""`make demo`: the whole loop on 127.0.0.1, playing the runbook with a live timeline.

A throwaway PostgreSQL, a moto server standing in for AWS (an RDS instance with snapshots and CloudWatch
datapoints), the exporter, the responder (enforce mode, its own token), Prometheus and Alertmanager with the
project's rules and routes at demo intervals (alerts/demo/overrides.yml). Then: a runaway query, low free
storage, high CPU; each step of the loop is printed with its elapsed seconds. Ctrl-C stops everything;
DEMO_ONCE=1 plays the scenario once and exits 0 only if every step happened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import psycopg

from devtools.motoserver import FAKE_CREDENTIALS, MotoServer, start_moto
from devtools.overrides import demo_alertmanager, demo_rules
from devtools.pgserver import PostgresServer, start_server
from devtools.services import Service, start_alertmanager, start_exporter, start_prometheus, start_responder

IDENTIFIER = "skillancer-production"
REGION = "us-east-1"
GIB = 1024**3
TOKEN = "demo-responder-token-change-me"
CONSOLE_TOKEN = "demo-approver-token-change-me"  # the console's sign-in: an approver's own token
THRESHOLD = 5  # seconds: PostgresLongRunningQuery at demo intervals (alerts/demo/overrides.yml)
LADDER = ["db.t3.medium", "db.r6g.large", "db.r6g.xlarge"]
STEPS = (
    "query started",
    "PostgresLongRunningQuery firing",
    "webhook received: kill-long-queries",
    "backend stopped",
    "RDSFreeStorageLow firing",
    "storage grown",
    "RDSCPUHigh firing",
    "instance scaled",
)


class Timeline:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.seen: set[str] = set()

    def event(self, key: str, text: str | None = None) -> None:
        if key not in self.seen:
            self.seen.add(key)
            print(f"[{time.monotonic() - self.start:6.1f}s] {text or key}", flush=True)

    def done(self) -> bool:
        return all(step in self.seen for step in STEPS)


def seed_aws(moto: MotoServer) -> tuple[Any, Any]:
    session = boto3.session.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
    )
    rds = session.client("rds", region_name=REGION, endpoint_url=moto.endpoint_url)
    cloudwatch = session.client("cloudwatch", region_name=REGION, endpoint_url=moto.endpoint_url)
    backup = session.client("rds", region_name="eu-west-1", endpoint_url=moto.endpoint_url)
    rds.create_db_instance(
        DBInstanceIdentifier=IDENTIFIER, Engine="postgres", EngineVersion="15.4", DBInstanceClass=LADDER[0],
        AllocatedStorage=100, StorageType="gp3", MasterUsername="master", MasterUserPassword="not-a-password",
        BackupRetentionPeriod=7,
    )  # fmt: skip
    arn = rds.create_db_snapshot(
        DBInstanceIdentifier=IDENTIFIER, DBSnapshotIdentifier=f"{IDENTIFIER}-manual"
    )["DBSnapshot"]["DBSnapshotArn"]
    backup.copy_db_snapshot(
        SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier=f"{IDENTIFIER}-copy", SourceRegion=REGION
    )
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    for minutes in range(10, 1, -1):  # a calm instance until two minutes ago
        put(
            cloudwatch,
            now - dt.timedelta(minutes=minutes),
            {"FreeStorageSpace": 40 * GIB, "CPUUtilization": 35.0},
        )
    return rds, cloudwatch


def put(cloudwatch: Any, when: dt.datetime, values: dict[str, float]) -> None:
    units = {"FreeStorageSpace": "Bytes", "CPUUtilization": "Percent"}
    cloudwatch.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": IDENTIFIER}],
                "Timestamp": when,
                "Value": value,
                "Unit": units[name],
            }
            for name, value in values.items()
        ],
    )


def put_now(cloudwatch: Any, values: dict[str, float]) -> None:
    """A datapoint the exporter serves at once: the last second of the minute its window ends at."""
    now = dt.datetime.now(dt.UTC)
    put(cloudwatch, now.replace(second=0, microsecond=0) - dt.timedelta(seconds=1), values)


def get_json(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as resp:
        return json.load(resp)


def prepare_postgres(server: PostgresServer) -> dict[str, str]:
    server.execute("CREATE ROLE demo_monitor LOGIN PASSWORD 'demo-monitor-pw' IN ROLE pg_monitor")
    server.execute(
        "CREATE ROLE demo_responder LOGIN PASSWORD 'demo-responder-pw' IN ROLE pg_signal_backend, pg_read_all_stats"
    )
    server.execute("CREATE ROLE demo_app LOGIN PASSWORD 'demo-app-pw'")
    server.execute("CREATE DATABASE shop OWNER demo_app")
    return {
        "DEMO_EXPORTER_DSN": server.dsn("postgres", "demo_monitor", "demo-monitor-pw"),
        "DEMO_RESPONDER_DSN": server.dsn("postgres", "demo_responder", "demo-responder-pw"),
    }


def exporter_config() -> dict[str, Any]:
    return {
        "targets": [
            {
                "name": "production",
                "dsn_env": "DEMO_EXPORTER_DSN",
                "rds": {"identifier": IDENTIFIER, "region": REGION, "backup_regions": ["eu-west-1"]},
            }
        ],
        "collectors": {"tables": {"ttl": "5s"}, "indexes": {"ttl": "5s"}, "statio_tables": {"ttl": "5s"}},
        "aws": {
            "rds": {"interval": "2s"},
            "snapshots": {"interval": "10s"},
            "cloudwatch": {"interval": "2s", "period": "60s", "delay": "0s", "lookback": "5m"},
        },
    }


def responder_config(workdir: Path, token: Path) -> dict[str, Any]:
    return {
        "mode": "enforce",
        "token_file": str(token),
        "approvers": [{"name": "demo", "token_file": str(token.with_name("approver-token"))}],
        "journal": f"sqlite:///{workdir / 'journal.db'}",
        "targets": [{"name": "production", "dsn_env": "DEMO_RESPONDER_DSN"}],
        "aws": {"region": REGION},
        "playbooks": [
            {
                "name": "kill-long-queries",
                "match": {"alertname": "PostgresLongRunningQuery"},
                "action": "terminate_queries",
                "params": {"min_duration": f"{THRESHOLD}s", "grace": "1s", "max_kills": 5},
                "cooldown": "1m",
                "max_per_day": 100,
            },
            {
                "name": "grow-storage",
                "match": {"alertname": "RDSFreeStorageLow"},
                "action": "grow_storage",
                "params": {"increase_percent": 25, "max_allocated_gib": 1000},
                "cooldown": "6h",
                "max_per_day": 4,
            },
            {
                "name": "scale-up-on-cpu",
                "match": {"alertname": "RDSCPUHigh"},
                "action": "scale_instance",
                "params": {"ladder": LADDER, "max_class": LADDER[-1]},
                "require_approval": False,  # the demo plays it through; production waits for a human
                "cooldown": "6h",
                "max_per_day": 2,
            },
        ],
    }


def runaway_query(dsn: str, timeline: Timeline) -> threading.Thread:
    def run() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            timeline.event(
                "query started", f"query started: SELECT pg_sleep(600) in shop (runs over {THRESHOLD}s)"
            )
            try:
                conn.execute(b"SELECT pg_sleep(600)")
            except psycopg.errors.QueryCanceled:
                timeline.event("backend stopped", "backend cancelled by the responder")
            except psycopg.OperationalError:
                timeline.event("backend stopped", "backend terminated by the responder")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def watch(services: dict[str, Service], rds: Any, timeline: Timeline) -> Callable[[], None]:
    """One look at Prometheus, the responder and the RDS instance; prints what changed."""

    def look() -> None:
        with contextlib.suppress(OSError, ValueError):
            for alert in get_json(f"{services['prometheus'].url}/api/v1/alerts")["data"]["alerts"]:
                name, state = alert["labels"]["alertname"], alert["state"]
                if name in ("PostgresLongRunningQuery", "RDSFreeStorageLow", "RDSCPUHigh"):
                    timeline.event(f"{name} {state}", f"alert {name} {state}")
        with contextlib.suppress(OSError, ValueError):
            for action in reversed(
                get_json(f"{services['responder'].url}/actions?limit=50", TOKEN)["actions"]
            ):
                timeline.event(
                    f"webhook received: {action['playbook']}", f"webhook received: {action['playbook']}"
                )
                if action.get("outcome"):
                    timeline.event(
                        f"{action['playbook']} {action['outcome']}",
                        f"{action['playbook']}: {action['outcome']}",
                    )
        instance = rds.describe_db_instances(DBInstanceIdentifier=IDENTIFIER)["DBInstances"][0]
        if instance["AllocatedStorage"] != 100:
            timeline.event("storage grown", f"storage grown 100 → {instance['AllocatedStorage']} GiB")
        if instance["DBInstanceClass"] != LADDER[0]:
            timeline.event("instance scaled", f"instance scaled {LADDER[0]} → {instance['DBInstanceClass']}")

    return look


def play(services: dict[str, Service], rds: Any, cloudwatch: Any, app_dsn: str, once: bool) -> bool:
    timeline = Timeline()
    look = watch(services, rds, timeline)
    runaway_query(app_dsn, timeline)
    stages: list[tuple[str, Callable[[], None], str]] = [
        (
            "backend stopped",
            lambda: put_now(cloudwatch, {"FreeStorageSpace": 5 * GIB}),
            "free storage drops to 5 GiB",
        ),
        ("storage grown", lambda: put_now(cloudwatch, {"CPUUtilization": 95.0}), "CPU climbs to 95%"),
    ]
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        look()
        if stages and stages[0][0] in timeline.seen:
            _, act, text = stages.pop(0)
            act()
            timeline.event(text, text)
        if timeline.done():
            break
        time.sleep(0.25)
    missing = [s for s in STEPS if s not in timeline.seen]
    if missing:
        print(f"demo: these steps did not happen: {', '.join(missing)}", flush=True)
    return not missing


def main() -> int:
    once = os.environ.get("DEMO_ONCE") == "1"
    workdir = Path(tempfile.mkdtemp(prefix="pgwarden-demo-"))
    services: dict[str, Service] = {}
    server: PostgresServer | None = None
    moto: MotoServer | None = None
    ok = False
    try:
        print(
            "starting PostgreSQL, moto, the exporter, the responder, Prometheus and Alertmanager ...",
            flush=True,
        )
        server = start_server()
        dsns = prepare_postgres(server)
        moto = start_moto(log_path=workdir / "moto.log")
        rds, cloudwatch = seed_aws(moto)
        env = {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": moto.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            **dsns,
        }
        token = workdir / "token"
        token.write_text(TOKEN + "\n")
        token.with_name("approver-token").write_text(CONSOLE_TOKEN + "\n")
        services["exporter"] = start_exporter(workdir, exporter_config(), env)
        services["responder"] = start_responder(workdir, responder_config(workdir, token), env)
        am = demo_alertmanager(workdir / "alertmanager.yml", f"{services['responder'].url}/webhook", token)
        services["alertmanager"] = start_alertmanager(workdir, am)
        scrape = {"pgwarden-exporter": f"127.0.0.1:{services['exporter'].port}",
                  "pgwarden-responder": f"127.0.0.1:{services['responder'].port}"}  # fmt: skip
        services["prometheus"] = start_prometheus(
            workdir, scrape, demo_rules(workdir / "rules"), services["alertmanager"]
        )
        print(f"  Prometheus    {services['prometheus'].url}/alerts", flush=True)
        print(f"  Alertmanager  {services['alertmanager'].url}", flush=True)
        print(
            f"  responder     {services['responder'].url}/actions (Authorization: Bearer {TOKEN})", flush=True
        )
        print(f"  exporter      {services['exporter'].url}/metrics", flush=True)
        print(f"  console       {services['responder'].url}/ui (sign in with {CONSOLE_TOKEN})", flush=True)
        time.sleep(3)  # a few scrapes before the scenario
        ok = play(services, rds, cloudwatch, server.dsn("shop", "demo_app", "demo-app-pw"), once)
        print("demo: every step happened" if ok else "demo: FAILED", flush=True)
        if not once:
            print("everything keeps running; Ctrl-C stops it", flush=True)
            signal.pause()
    except KeyboardInterrupt:
        print()
    finally:
        for service in reversed(list(services.values())):
            service.stop()
        if moto is not None:
            moto.stop()
        if server is not None:
            server.stop("fast")
            shutil.rmtree(server.datadir.parent, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
        print("stopped", flush=True)
    return 0 if ok or not once else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    sys.exit(main())
