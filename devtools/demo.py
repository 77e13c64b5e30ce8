"""`make demo`: the whole loop on 127.0.0.1, playing the runbook with a live timeline.

A throwaway PostgreSQL, a moto server standing in for AWS (an RDS instance with snapshots and CloudWatch
datapoints), the exporter, the responder (enforce mode, its own token), Prometheus and Alertmanager with the
project's rules and routes at demo intervals (alerts/demo/overrides.yml). Then: a runaway query, low free
storage, high CPU, whose scale-up waits for an approval and is approved in the console as a person would;
each step of the loop is printed with the seconds since the start at which it happened, in the order things
happened (see `devtools.demo_timeline`); then the weekly restore drill, run by hand through the responder's
schedule (the restored instance's checks run against the demo's PostgreSQL, since moto's endpoints do not
resolve), and a statistics refresh that is left waiting for your approval in the console. Beside them, one
guarded schema migration behind a long transaction (`devtools.demo_migration`), run by the `migrate run` CLI
on the responder's own journal, and the weekly index advice of the shop's reads (`devtools.demo_shop`), run
now through its schedule, its recommendations printed. Ctrl-C stops everything; DEMO_ONCE=1 plays the scenario
once and exits 0 only if every step happened; DEMO_SCREENSHOTS=folder saves the console's timeline and
approvals and a weekly report, taken in Chromium.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import psycopg

from devtools.demo_config import (
    ANALYZE,
    DRILL,
    IDENTIFIER,
    LADDER,
    REGION,
    THRESHOLD,
    exporter_config,
    prepare_postgres,
    responder_config,
)
from devtools.demo_console import Console
from devtools.demo_migration import GuardedMigration
from devtools.demo_shop import ADVICE, advice_text, prepare_shop
from devtools.demo_shots import take_screenshots
from devtools.demo_timeline import SETTLE, ServerLog, Timeline, alert_transitions, get_json, journal_time
from devtools.motoserver import FAKE_CREDENTIALS, MotoServer, start_moto
from devtools.overrides import demo_alertmanager, demo_rules
from devtools.pgserver import PostgresServer, start_server
from devtools.processes import free_port
from devtools.seeding import create_postgres, put_rds_datapoints
from devtools.services import Service, start_alertmanager, start_exporter, start_prometheus, start_responder

__all__ = ["SETTLE", "Timeline", "main"]  # SETTLE and Timeline: devtools.demo_timeline's, re-exported

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
    "scale-up-on-cpu pending",
    "scale-up-on-cpu approved",
    "instance scaled",
    "drill done",
    f"{ANALYZE} pending",
    "migration applied",
    "index advice done",
)
ALERTS = ("PostgresLongRunningQuery", "RDSFreeStorageLow", "RDSCPUHigh")
# PostgreSQL's server log: millisecond times in UTC and the backend's pid on every line.
POSTGRES_LOG_SETTINGS = {"log_line_prefix": "'%m [%p] '", "log_timezone": "'UTC'"}


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


def runaway_query(dsn: str) -> int:
    """Starts SELECT pg_sleep(600) in a thread; returns its backend's pid."""
    conn = psycopg.connect(dsn, autocommit=True)

    def run() -> None:
        with conn, contextlib.suppress(psycopg.errors.QueryCanceled, psycopg.OperationalError):
            conn.execute(b"SELECT pg_sleep(600)")

    threading.Thread(target=run, daemon=True).start()
    return int(conn.info.backend_pid)


def drill_line(result: dict[str, Any]) -> str:
    checks = result.get("checks") or []
    passed = sum(1 for c in checks if c.get("passed"))
    deleted = "instance deleted" if result.get("deleted") else "instance NOT deleted"
    return f"drill restored in {result.get('restore_seconds') or 0:.0f} s, {passed}/{len(checks)} checks passed, {deleted}"


def run_schedule_now(responder: Service, name: str) -> None:
    """POST /schedules/<name>/run: the schedule's job now, through the journal like any tick."""
    request = urllib.request.Request(
        f"{responder.url}/schedules/{name}/run", method="POST", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        resp.read()


class Watch:
    """One read of every source per `look()`; each event noticed goes to the timeline with its source's time.
    `pending` holds the id of each playbook's decision waiting for an approval."""

    def __init__(
        self,
        services: dict[str, Service],
        rds: Any,
        server: PostgresServer,
        runaway_pid: int,
        timeline: Timeline,
        migration: GuardedMigration,
    ) -> None:
        self.services, self.rds, self.server, self.timeline = services, rds, server, timeline
        self.runaway_pid, self.migration = runaway_pid, migration
        self.log = ServerLog(server.log_path)
        self.pending: dict[str, int] = {}

    def look(self) -> None:
        timeline = self.timeline
        if "query started" not in timeline.seen:
            rows = self.server.execute(
                "SELECT query_start FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
                params=(self.runaway_pid,),
            )
            if rows:
                timeline.event(
                    "query started",
                    rows[0][0].timestamp(),
                    f"query started: SELECT pg_sleep(600) in shop (runs over {THRESHOLD}s)",
                )
        with contextlib.suppress(OSError, ValueError):
            for name, state, at in alert_transitions(self.services["prometheus"], ALERTS):
                timeline.event(f"{name} {state}", at, f"alert {name} {state}")
        finished = self._journal()
        for pid, at, how in self.log.stopped_backends():
            if pid == self.runaway_pid:
                timeline.event("backend stopped", at, f"backend {how} by the responder")
        # moto records no event for ModifyDBInstance: a change is dated by the action that made it, the end
        # of its call to AWS (the journal's finished_at).
        instance = self.rds.describe_db_instances(DBInstanceIdentifier=IDENTIFIER)["DBInstances"][0]
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

    def _journal(self) -> dict[str, float]:
        """The journal's decisions (GET /actions): received, waiting, started, finished; when each playbook's
        first decision finished."""
        finished: dict[str, float] = {}
        with contextlib.suppress(OSError, ValueError):
            actions = get_json(f"{self.services['responder'].url}/actions?limit=50", TOKEN)["actions"]
            self.migration.look(actions)  # `migrate run`'s row: the CLI writes to the responder's journal
            for action in reversed(actions):  # oldest first: the first decision of each playbook
                playbook, timings, outcome = action["playbook"], action["timings"], action["outcome"]
                if playbook is None or action["alert"]["status"] == "resolved" or outcome == "duplicate":
                    continue
                if action["action"] == "migrate":  # `migrate run`'s row: GuardedMigration.look tells it
                    continue
                how = "webhook received" if action["alert"]["status"] == "firing" else "job journaled"
                journaled = journal_time(timings["journaled_at"])
                self.timeline.event(f"webhook received: {playbook}", journaled, f"{how}: {playbook}")
                if action["state"] == "pending" or action["decided_by"]:
                    self.pending.setdefault(playbook, action["id"])
                    self.timeline.event(
                        f"{playbook} pending", journaled, f"{playbook}: waiting for an approval"
                    )
                if timings["started_at"]:
                    self.timeline.event(f"{playbook} started", journal_time(timings["started_at"]))
                if outcome and timings["finished_at"]:
                    ended = journal_time(timings["finished_at"])
                    self.timeline.event(f"{playbook} {outcome}", ended, f"{playbook}: {outcome}")
                    finished.setdefault(playbook, ended)
                    if playbook == DRILL and action.get("result"):
                        self.timeline.event("drill done", ended, drill_line(action["result"]))
                    if playbook == ADVICE and action.get("result"):
                        self.timeline.event("index advice done", ended, advice_text(action["result"]))
        return finished


def approve_in_console(responder: Service, watch: Watch, timeline: Timeline, playbook: str) -> None:
    """What an approver does: sign in to the console with their own token and press Approve."""
    asked = time.time()
    answer = Console(responder.url, CONSOLE_TOKEN).approve(watch.pending[playbook])
    timeline.event(f"{playbook} approved", asked, f"{playbook}: {answer} in the console by demo")


def play(
    services: dict[str, Service],
    rds: Any,
    cloudwatch: Any,
    server: PostgresServer,
    app_dsn: str,
    run: tuple[Path, dict[str, str]],
) -> bool:
    """The scenario; `run`: the demo's folder and the environment the programs run in."""
    workdir, env = run
    timeline = Timeline(STEPS)
    migration = GuardedMigration(workdir / "responder.yml", env, app_dsn, workdir / "migrate.log", timeline)
    watch = Watch(services, rds, server, runaway_query(app_dsn), timeline, migration)
    migration.start()  # beside the alerts' loop: its own lines, in the same timeline
    responder = services["responder"]
    # (the step that starts it, what the demo does, what it says; None: the action says it itself)
    stages: list[tuple[str, Callable[[], None], str | None]] = [
        ("backend stopped", lambda: put_now(cloudwatch, {"FreeStorageSpace": 5 * GIB}), "free storage drops to 5 GiB"),
        ("storage grown", lambda: put_now(cloudwatch, {"CPUUtilization": 95.0}), "CPU climbs to 95%"),
        ("scale-up-on-cpu pending", lambda: approve_in_console(responder, watch, timeline, "scale-up-on-cpu"), None),
        ("instance scaled", lambda: run_schedule_now(responder, DRILL), f"restore drill requested: POST /schedules/{DRILL}/run"),
        ("drill done", lambda: run_schedule_now(responder, ANALYZE), f"statistics refresh requested: POST /schedules/{ANALYZE}/run"),
    ]  # fmt: skip
    # beside the alerts: the weekly index advice, run now once the migration no longer locks shop.orders
    beside: list[tuple[str, Callable[[], None], str | None]] = [
        ("migration applied", lambda: run_schedule_now(responder, ADVICE), f"index advice requested: POST /schedules/{ADVICE}/run"),
    ]  # fmt: skip
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and not timeline.done():
        read_from = time.time()
        watch.look()
        timeline.release(read_from)
        for queue in (stages, beside):
            if queue and queue[0][0] in timeline.seen:
                _, act, text = queue.pop(0)
                asked = time.time()  # the request is made from here on; nothing can answer it before
                act()
                if text is not None:
                    timeline.event(text, asked)
        time.sleep(0.25)
    time.sleep(SETTLE)  # the last lines: one more read, then everything held
    watch.look()
    timeline.flush()
    if missing := timeline.missing():
        print(f"demo: these steps did not happen: {', '.join(missing)}", flush=True)
        with contextlib.suppress(OSError, ValueError):  # what the responder journaled, to see why
            for action in get_json(f"{responder.url}/actions?limit=10", TOKEN)["actions"]:
                print(f"  journal: {action['playbook']} {action['state']} {action['outcome']} "
                      f"{action.get('error') or ''}", flush=True)  # fmt: skip
        with contextlib.suppress(OSError):
            print(
                "  migrate run printed:", (workdir / "migrate.log").read_text()[-2000:], sep="\n", flush=True
            )
    return not missing


def main() -> int:
    once = os.environ.get("DEMO_ONCE") == "1"
    screenshots = os.environ.get("DEMO_SCREENSHOTS")  # a folder: the console's and a report's, in Chromium
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
        app_dsn = server.dsn("shop", "demo_app", "demo-app-pw")
        seeding = ThreadPoolExecutor(1)  # the shop's data and reads, while the services start
        shop = seeding.submit(prepare_shop, server, app_dsn)
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
        alertmanager_port = free_port()
        services["exporter"] = start_exporter(workdir, exporter_config(), env)
        config = responder_config(workdir, token, server.port, f"http://127.0.0.1:{alertmanager_port}")
        services["responder"] = start_responder(workdir, config, env)
        am = demo_alertmanager(workdir / "alertmanager.yml", f"{services['responder'].url}/webhook", token)
        services["alertmanager"] = start_alertmanager(workdir, am, alertmanager_port)
        scrape = {"pgwarden-exporter": f"127.0.0.1:{services['exporter'].port}",
                  "pgwarden-responder": f"127.0.0.1:{services['responder'].port}"}  # fmt: skip
        services["prometheus"] = start_prometheus(
            workdir, scrape, demo_rules(workdir / "rules"), services["alertmanager"]
        )
        responder = services["responder"]
        print(f"  Prometheus    {services['prometheus'].url}/alerts", flush=True)
        print(f"  Alertmanager  {services['alertmanager'].url}", flush=True)
        print(f"  responder     {responder.url}/actions (Authorization: Bearer {TOKEN})", flush=True)
        print(f"  exporter      {services['exporter'].url}/metrics", flush=True)
        print(f"  console       {responder.url}/ui (sign in with {CONSOLE_TOKEN})", flush=True)
        time.sleep(3)  # a few scrapes before the scenario
        shop.result()
        seeding.shutdown()
        ok = play(services, rds, cloudwatch, server, app_dsn, (workdir, env))
        print("demo: every step happened" if ok else "demo: FAILED", flush=True)
        if ok:
            print(f"demo: {ANALYZE} waits for your approval: {responder.url}/ui/approvals", flush=True)
        if screenshots:
            take_screenshots(Path(screenshots), services, workdir / "responder.yml", env, CONSOLE_TOKEN)
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
