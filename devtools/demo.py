"""`make demo`: the whole loop on 127.0.0.1, playing the runbook with a live timeline.

A throwaway PostgreSQL, a moto server standing in for AWS (an RDS instance with snapshots and CloudWatch
datapoints), the exporter, the responder (enforce mode, its own token), Prometheus and Alertmanager with the
project's rules and routes at demo intervals (alerts/demo/overrides.yml). Then: a runaway query, low free
storage, high CPU; each step of the loop is printed with the seconds since the start at which it happened,
in the order things happened (see `Timeline`); then the weekly restore drill, run by hand through the
responder's schedule (the restored instance's checks run against the demo's PostgreSQL, since moto's
endpoints do not resolve). Ctrl-C stops everything; DEMO_ONCE=1 plays the scenario once
and exits 0 only if every step happened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg

from devtools.demo_config import (
    DRILL,
    IDENTIFIER,
    LADDER,
    REGION,
    THRESHOLD,
    exporter_config,
    prepare_postgres,
    responder_config,
)
from devtools.motoserver import FAKE_CREDENTIALS, MotoServer, start_moto
from devtools.overrides import demo_alertmanager, demo_rules
from devtools.pgserver import PostgresServer, start_server
from devtools.seeding import create_postgres, put_rds_datapoints
from devtools.services import Service, start_alertmanager, start_exporter, start_prometheus, start_responder

GIB = 1024**3
TOKEN = "demo-responder-token-change-me"
CONSOLE_TOKEN = "demo-approver-token-change-me"  # the console's sign-in: an approver's own token
STEPS = (
    "query started",
    "PostgresLongRunningQuery firing",
    "webhook received: kill-long-queries",
    "backend stopped",
    "kill-long-queries succeeded",
    "RDSFreeStorageLow firing",
    "storage grown",
    "RDSCPUHigh firing",
    "instance scaled",
    "drill done",
)
ALERTS = ("PostgresLongRunningQuery", "RDSFreeStorageLow", "RDSCPUHigh")
# PostgreSQL's server log: millisecond times in UTC and the backend's pid on every line.
POSTGRES_LOG_SETTINGS = {"log_line_prefix": "'%m [%p] '", "log_timezone": "'UTC'"}
STOPPED_BACKEND = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) UTC \[(\d+)\] (?:ERROR|FATAL):\s+"
    r"(canceling statement due to user request|terminating connection due to administrator command)"
)
# Longest time between an event and the moment its source shows it (a journal commit, a rule evaluation
# finishing, a log line written): a line waits until every source has been read this long after its time.
SETTLE = 1.0


@dataclass(order=True)
class Event:
    at: float  # seconds since the epoch, as the event's source recorded it
    seq: int
    key: str = field(compare=False)
    text: str = field(compare=False)


class Timeline:
    """The steps of the loop, printed in the order they happened.

    Each event carries the time its source recorded (the responder's journal, PostgreSQL's server log and
    pg_stat_activity, Prometheus' ALERTS samples, the demo's own calls), not the moment the demo noticed it:
    the sources are polled one after the other, so an effect can be noticed before its cause. A line is held
    back until every source has been read SETTLE seconds after its time, then printed in time order.
    """

    def __init__(self) -> None:
        self.start = time.time()
        self.seen: set[str] = set()
        self._held: list[Event] = []
        self._seq = itertools.count()

    def event(self, key: str, at: float, text: str | None = None) -> None:
        """An event noticed (once per key), with the time it happened."""
        if key not in self.seen:
            self.seen.add(key)
            self._held.append(Event(at, next(self._seq), key, text or key))

    def release(self, read_from: float) -> None:
        """Prints the held lines that every source, read from `read_from` on, would have shown by then."""
        self._print([e for e in self._held if e.at <= read_from - SETTLE])

    def flush(self) -> None:
        self._print(list(self._held))

    def _print(self, due: list[Event]) -> None:
        for event in sorted(due):
            self._held.remove(event)
            print(f"[{event.at - self.start:7.2f}s] {event.text}", flush=True)

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
    create_postgres(rds, IDENTIFIER, DBInstanceClass=LADDER[0], StorageType="gp3")
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
    put_rds_datapoints(cloudwatch, IDENTIFIER, when, {name: (units[name], v) for name, v in values.items()})


def put_now(cloudwatch: Any, values: dict[str, float]) -> None:
    """A datapoint the exporter serves at once: the last second of the minute its window ends at."""
    now = dt.datetime.now(dt.UTC)
    put(cloudwatch, now.replace(second=0, microsecond=0) - dt.timedelta(seconds=1), values)


def get_json(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as resp:
        return json.load(resp)


def runaway_query(dsn: str) -> int:
    """Starts SELECT pg_sleep(600) in a thread; returns its backend's pid."""
    conn = psycopg.connect(dsn, autocommit=True)

    def run() -> None:
        with conn, contextlib.suppress(psycopg.errors.QueryCanceled, psycopg.OperationalError):
            conn.execute(b"SELECT pg_sleep(600)")

    threading.Thread(target=run, daemon=True).start()
    return int(conn.info.backend_pid)


class ServerLog:
    """New lines of PostgreSQL's server log: the backends the responder cancelled or terminated."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def stopped_backends(self) -> list[tuple[int, float, str]]:
        """(pid, when, "cancelled" or "terminated") for each such line written since the last call."""
        with contextlib.suppress(OSError), self.path.open("rb") as log:
            log.seek(self.offset)
            chunk = log.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self.offset += len(complete)
            found = []
            for line in complete.decode(errors="replace").splitlines():
                if m := STOPPED_BACKEND.match(line):
                    when = dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.UTC)
                    how = "cancelled" if m[3].startswith("canceling") else "terminated"
                    found.append((int(m[2]), when.timestamp(), how))
            return found
        return []


def alert_transitions(prometheus: Service) -> list[tuple[str, str, float]]:
    """(alertname, pending or firing, when) of the demo's alerts: the first ALERTS sample of each state,
    stamped with the rule evaluation that wrote it."""
    selector = f'ALERTS{{alertname=~"{"|".join(ALERTS)}"}}[15m]'
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": selector})
    series = get_json(url)["data"]["result"]
    return [
        (s["metric"]["alertname"], s["metric"]["alertstate"], float(s["values"][0][0]))
        for s in series
        if s["values"]
    ]


def drill_line(result: dict[str, Any]) -> str:
    checks = result.get("checks") or []
    passed = sum(1 for c in checks if c.get("passed"))
    deleted = "instance deleted" if result.get("deleted") else "instance NOT deleted"
    return f"drill restored in {result.get('restore_seconds') or 0:.0f} s, {passed}/{len(checks)} checks passed, {deleted}"


def run_drill_now(responder: Service) -> None:
    """POST /schedules/<drill>/run: the schedule's job now, through the journal like any tick."""
    request = urllib.request.Request(
        f"{responder.url}/schedules/{DRILL}/run", method="POST", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        resp.read()


def journal_time(iso: str) -> float:
    """A journal timestamp (2026-01-01T10:00:00.123Z) as seconds since the epoch."""
    return dt.datetime.fromisoformat(iso).timestamp()


def watch(
    services: dict[str, Service], rds: Any, server: PostgresServer, runaway_pid: int, timeline: Timeline
) -> Callable[[], None]:
    """One read of every source; each event noticed is handed to the timeline with its source's time."""
    log = ServerLog(server.log_path)

    def look() -> None:
        if "query started" not in timeline.seen:
            rows = server.execute(
                "SELECT query_start FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
                params=(runaway_pid,),
            )
            if rows:
                timeline.event(
                    "query started",
                    rows[0][0].timestamp(),
                    f"query started: SELECT pg_sleep(600) in shop (runs over {THRESHOLD}s)",
                )
        with contextlib.suppress(OSError, ValueError):
            for name, state, at in alert_transitions(services["prometheus"]):
                timeline.event(f"{name} {state}", at, f"alert {name} {state}")
        finished: dict[str, float] = {}
        with contextlib.suppress(OSError, ValueError):
            actions = get_json(f"{services['responder'].url}/actions?limit=50", TOKEN)["actions"]
            for action in reversed(actions):  # oldest first: the first decision of each playbook
                playbook, timings, outcome = action["playbook"], action["timings"], action["outcome"]
                if playbook is None or action["alert"]["status"] == "resolved" or outcome == "duplicate":
                    continue
                how = "webhook received" if action["alert"]["status"] == "firing" else "job journaled"
                timeline.event(
                    f"webhook received: {playbook}",
                    journal_time(timings["journaled_at"]),
                    f"{how}: {playbook}",
                )
                if timings["started_at"]:
                    timeline.event(f"{playbook} started", journal_time(timings["started_at"]))
                if outcome and timings["finished_at"]:
                    ended = journal_time(timings["finished_at"])
                    timeline.event(f"{playbook} {outcome}", ended, f"{playbook}: {outcome}")
                    finished.setdefault(playbook, ended)
                    if playbook == DRILL and action.get("result"):
                        timeline.event("drill done", ended, drill_line(action["result"]))
        for pid, at, how in log.stopped_backends():
            if pid == runaway_pid:
                timeline.event("backend stopped", at, f"backend {how} by the responder")
        # moto records no event for ModifyDBInstance: a change is dated by the action that made it, the end
        # of its call to AWS (the journal's finished_at).
        instance = rds.describe_db_instances(DBInstanceIdentifier=IDENTIFIER)["DBInstances"][0]
        if instance["AllocatedStorage"] != 100 and "grow-storage" in finished:
            timeline.event(
                "storage grown",
                finished["grow-storage"],
                f"storage grown 100 → {instance['AllocatedStorage']} GiB",
            )
        if instance["DBInstanceClass"] != LADDER[0] and "scale-up-on-cpu" in finished:
            timeline.event(
                "instance scaled",
                finished["scale-up-on-cpu"],
                f"instance scaled {LADDER[0]} → {instance['DBInstanceClass']}",
            )

    return look


def play(
    services: dict[str, Service], rds: Any, cloudwatch: Any, server: PostgresServer, app_dsn: str
) -> bool:
    timeline = Timeline()
    look = watch(services, rds, server, runaway_query(app_dsn), timeline)
    stages: list[tuple[str, Callable[[], None], str]] = [
        (
            "backend stopped",
            lambda: put_now(cloudwatch, {"FreeStorageSpace": 5 * GIB}),
            "free storage drops to 5 GiB",
        ),
        ("storage grown", lambda: put_now(cloudwatch, {"CPUUtilization": 95.0}), "CPU climbs to 95%"),
        (
            "instance scaled",
            lambda: run_drill_now(services["responder"]),
            f"restore drill requested: POST /schedules/{DRILL}/run",
        ),
    ]
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and not timeline.done():
        read_from = time.time()
        look()
        timeline.release(read_from)
        if stages and stages[0][0] in timeline.seen:
            _, act, text = stages.pop(0)
            asked = time.time()  # the request is made from here on; nothing can answer it before
            act()
            timeline.event(text, asked)
        time.sleep(0.25)
    time.sleep(SETTLE)  # the last lines: one more read, then everything held
    look()
    timeline.flush()
    missing = [s for s in STEPS if s not in timeline.seen]
    if missing:
        print(f"demo: these steps did not happen: {', '.join(missing)}", flush=True)
        with contextlib.suppress(OSError, ValueError):  # what the responder journaled, to see why
            for action in get_json(f"{services['responder'].url}/actions?limit=10", TOKEN)["actions"]:
                print(f"  journal: {action['playbook']} {action['state']} {action['outcome']} "
                      f"{action.get('error') or ''}", flush=True)  # fmt: skip
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
        server = start_server(settings=POSTGRES_LOG_SETTINGS)
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
        services["responder"] = start_responder(workdir, responder_config(workdir, token, server.port), env)
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
        ok = play(services, rds, cloudwatch, server, server.dsn("shop", "demo_app", "demo-app-pw"))
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
