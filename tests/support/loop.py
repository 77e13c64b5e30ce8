"""The closed loop's pieces: the running services, a runaway query, and reading the journal."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from devtools.pgserver import PostgresServer
from devtools.services import (
    Service,
    query,
)

TOKEN = "loop-test-token-0123456789"
PLAYBOOK = "kill-long-queries"
THRESHOLD = 5.0  # PostgresLongRunningQuery's demo threshold (alerts/demo/overrides.yml)
INTERVAL = 1.0  # scrape and evaluation interval
APP_DSN_ARGS = ("postgres", "loop_app", "loop-app-pw")


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for suffix in sorted(units, key=len, reverse=True):
        if duration.endswith(suffix):
            return float(duration.removesuffix(suffix)) * units[suffix]
    raise ValueError(duration)


@dataclass(frozen=True)
class Timings:
    """The responder route's Alertmanager timings, in seconds, as the loop runs them."""

    group_wait: float
    group_interval: float
    repeat_interval: float

    @classmethod
    def of(cls, alertmanager_yml: Path) -> Timings:
        doc = yaml.safe_load(alertmanager_yml.read_text())
        (route,) = [
            r
            for r in doc["route"]["routes"]
            if r["receiver"] == "pgwarden-responder" and "PostgresLongRunningQuery" in str(r["matchers"])
        ]
        return cls(*(_seconds(route[key]) for key in ("group_wait", "group_interval", "repeat_interval")))


@dataclass
class Loop:
    services: dict[str, Service]
    timings: Timings
    responder_env: dict[str, str]
    pg_server: PostgresServer

    def wait_for_scrapes(self) -> None:
        deadline = time.monotonic() + 20
        while not query(self.services["prometheus"], 'pg_stat_activity_oldest_query_seconds{state="active"}'):
            assert time.monotonic() < deadline, "Prometheus never scraped the exporter"
            time.sleep(0.5)

    def actions(self) -> list[dict[str, Any]]:
        """The responder's journal, oldest first (GET /actions)."""
        url = f"{self.services['responder'].url}/actions?limit=200"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            body = json.load(resp)
        return list(reversed(body["actions"]))

    def wait_for_actions(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float, what: str
    ) -> list[dict[str, Any]]:
        """Polls the journal until `done(actions)` is true."""
        deadline = time.monotonic() + timeout
        while True:
            actions = self.actions()
            if done(actions):
                return actions
            assert time.monotonic() < deadline, f"{what}: {json.dumps(actions, indent=1)}"
            time.sleep(0.3)

    def stop_responder(self) -> None:
        self.services["responder"].stop()

    def restart_responder(self) -> Service:
        """The same responder (configuration, journal) on the same port: Alertmanager's webhook URL names it."""
        self.services["responder"] = self.services["responder"].restart(
            dict(os.environ, **self.responder_env)
        )
        return self.services["responder"]

    def alertmanager_failed_webhooks(self) -> float:
        """Failed webhook requests, each attempt counted (a notification retried until it succeeds counts in
        alertmanager_notification_requests_failed_total, not in alertmanager_notifications_failed_total)."""
        with urllib.request.urlopen(f"{self.services['alertmanager'].url}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("alertmanager_notification_requests_failed_total{")
            and 'integration="webhook"' in line
        )


@dataclass
class Runaway:
    """A query of the application role that runs until something stops it."""

    conn: psycopg.Connection[Any]
    pid: int
    started: float = 0.0
    ended: float | None = None
    how: str = "running"
    gave_up: bool = False
    thread: threading.Thread | None = field(default=None, repr=False)

    @classmethod
    def start(cls, pg_server: PostgresServer, seconds: int) -> Runaway:
        conn = psycopg.connect(pg_server.dsn(*APP_DSN_ARGS), autocommit=True)
        runaway = cls(conn, conn.info.backend_pid)
        runaway.thread = threading.Thread(target=runaway._run, args=(seconds,), daemon=True)
        runaway.started = time.time()
        runaway.thread.start()
        return runaway

    def _run(self, seconds: int) -> None:
        try:
            self.conn.execute(f"SELECT pg_sleep({seconds:d})".encode())
            self.how = "finished"
        except psycopg.errors.QueryCanceled:
            self.how = "cancelled"
        except psycopg.OperationalError:
            self.how = "terminated"
        self.ended = time.time()

    def wait(self, timeout: float) -> None:
        """Waits until the query ends or `timeout` passes; then it is stopped either way."""
        assert self.thread is not None
        try:
            self.thread.join(timeout)
        finally:
            if self.thread.is_alive():
                self.gave_up = True  # the cancel below is the test's, not the responder's
                self.conn.cancel_safe()
                self.thread.join(5)
            self.conn.close()

    @property
    def stopped(self) -> bool:
        """Cancelled or terminated by someone else than this test."""
        return self.how in ("cancelled", "terminated") and not self.gave_up

    def seconds_over_threshold(self) -> float:
        """From the moment the query crossed the alert's threshold to the moment it was stopped."""
        assert self.ended is not None
        return self.ended - (self.started + THRESHOLD)


def epoch(iso: str) -> float:
    """A journal timestamp (2026-01-01T10:00:00.123Z) as seconds since the epoch."""
    return dt.datetime.fromisoformat(iso).timestamp()


def decisions(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The firing decisions of the playbook, duplicates and resolved records left out."""
    return [
        a
        for a in actions
        if a.get("playbook") == PLAYBOOK
        and a["alert"]["status"] == "firing"
        and a.get("outcome") != "duplicate"
    ]


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n{line}", flush=True)
