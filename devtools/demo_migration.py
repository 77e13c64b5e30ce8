"""The demo's guarded migration: a report holds a transaction open on `shop.orders` (`devtools.demo_shop`) for
HOLD seconds while the shop writes an order row every 20 ms; `pgwarden-responder migrate run -- psql -c "ALTER
TABLE orders ADD COLUMN ..."` starts behind it. Naked, that ALTER TABLE would queue every write behind it until the report commits; the
watchdog cancels it whenever writes wait behind it, and `run` retries it until it applies. The run is a row of
the responder's own journal (the CLI and the responder share it): the timeline reads it from `GET /actions`."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from devtools.demo_shop import CUSTOMERS
from devtools.demo_timeline import Timeline, journal_time

HOLD = 8.0  # seconds the report's transaction stays open
ALTER = "ALTER TABLE orders ADD COLUMN note text"
# The demo's `migrations:`: the watchdog (1 s) cancels before the lock timeout (3 s) would, and the command is
# retried every second or so until the report commits.
MIGRATIONS = {
    "lock_timeout": "3s",
    "watchdog": {"blocked_after": "1s"},
    "retries": {"attempts": 30, "backoff": "500ms", "max_backoff": "1s"},
}
TARGET = "shop"


@dataclass
class Writes:
    """The shop's writes: an order inserted every 20 ms, autocommit; their latencies by start time."""

    dsn: str
    done: list[tuple[float, float]] = field(default_factory=list)  # (started, seconds)
    errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with psycopg.connect(self.dsn + "?application_name=shop-writes", autocommit=True) as conn:
            for customer in itertools.count(1):
                if self.stop.is_set():
                    break
                started = time.time()
                try:
                    conn.execute(
                        "INSERT INTO orders (customer_id, amount) VALUES (%s, 4200)",
                        (customer % CUSTOMERS + 1,),
                    )
                except psycopg.Error:
                    self.errors += 1
                self.done.append((started, time.time() - started))
                time.sleep(0.02)

    def between(self, start: float, end: float) -> list[float]:
        return [seconds for at, seconds in self.done if start <= at <= end]


class GuardedMigration:
    """Plays the migration in threads (`start`); `look(actions)` puts what happened on the timeline."""

    def __init__(
        self, config: Path, env: Mapping[str, str], app_dsn: str, log: Path, timeline: Timeline
    ) -> None:
        self.config, self.env, self.app_dsn, self.log = config, env, app_dsn, log
        self.timeline = timeline
        self.writes = Writes(app_dsn)
        self.opened = self.committed = 0.0
        self.exit_code: int | None = None

    def start(self) -> None:
        threading.Thread(target=self.writes.run, daemon=True).start()
        threading.Thread(target=self._play, daemon=True).start()

    def _play(self) -> None:
        with psycopg.connect(self.app_dsn + "?application_name=nightly-report") as report:
            report.execute("SELECT count(*) FROM orders")  # AccessShareLock on orders until it commits
            self.opened = time.time()
            threading.Timer(HOLD, self._commit, (report,)).start()
            time.sleep(1.0)
            psql = ["psql", self.app_dsn, "-v", "ON_ERROR_STOP=1", "-q", "-c", ALTER]
            argv = [sys.executable, "-m", "responder", "migrate", "run", "--config", str(self.config),
                    "--target", TARGET, "--", *psql]  # fmt: skip
            with self.log.open("w") as out:
                env = {**os.environ, **self.env}
                done = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=120)
                self.exit_code = done.returncode
        time.sleep(0.5)
        self.writes.stop.set()

    def _commit(self, report: psycopg.Connection[Any]) -> None:
        with contextlib.suppress(psycopg.Error):
            report.commit()
        self.committed = time.time()

    def look(self, actions: list[dict[str, Any]]) -> None:
        """The report's transaction, and the migration's journal row (`GET /actions`): when it started and how
        it ended. (Called from the demo's loop: the threads only record times.)"""
        if self.opened:
            text = f"a report opens a transaction on shop.orders for {HOLD:.0f} s"
            self.timeline.event("report opened", self.opened, text)
        if self.committed:
            text = f"the report commits after {self.committed - self.opened:.0f} s"
            self.timeline.event("report committed", self.committed, text)
        for action in actions:
            if action["action"] != "migrate" or action["alert"]["labels"].get("target") != TARGET:
                continue
            timings = action["timings"]
            if timings["started_at"]:
                self.timeline.event(
                    "migration started",
                    journal_time(timings["started_at"]),
                    f"migration {action['id']} started: `{ALTER}` through pgwarden-responder migrate run",
                )
            if action["outcome"] and timings["finished_at"] and self.committed:
                ended = journal_time(timings["finished_at"])
                key = "migration applied" if action["outcome"] == "succeeded" else "migration failed"
                self.timeline.event(
                    key, ended, self._summary(action, journal_time(timings["started_at"]), ended)
                )

    def _summary(self, action: dict[str, Any], started: float, ended: float) -> str:
        result = action["result"] or {}
        attempts = result.get("attempts") or []
        cancels = sum(len(a.get("cancels") or []) for a in attempts)
        writes = self.writes.between(started, ended)
        longest = max(writes, default=0.0)
        if action["outcome"] != "succeeded":
            return f"migration {action['id']}: {action['outcome']}: {action.get('error')}"
        return (
            f"migration {action['id']} applied: ALTER TABLE waited behind the report's"
            f" {self.committed - self.opened:.0f} s transaction; cancelled {cancels} times to let {len(writes)} writes through;"
            f" applied at {ended - self.timeline.start:.1f} s; longest write stall {longest:.1f} s"
        )
