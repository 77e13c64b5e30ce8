"""Helpers for the responder tests: tokens and roles, the `record` test action, configs, alerts and payloads."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from pgwarden.durations import Duration
from responder.config import Config
from responder.core import ActionContext, ActionParams

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
APPROVER = "alice-approver-token-0123"  # approvals take an approver's own token, never the webhook's
APPROVE = {"Authorization": f"Bearer {APPROVER}"}
RESPONDER_ROLE = "pgwarden_responder"
RESPONDER_PASSWORD = "responder-pw"
APP_ROLE = "pgw_app_user"
APP_PASSWORD = "app-pw"
PROTECTED_ROLE = "pgw_batch_user"
PROTECTED_PASSWORD = "batch-pw"


class RecordParams(ActionParams):
    sleep: Duration = 0.0
    fail: bool = False


class Recorder:
    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    async def run(self, ctx: ActionContext[RecordParams]) -> dict[str, Any]:
        params = ctx.params
        await ctx.save_plan({"target": ctx.target.key})
        if ctx.dry_run:
            return {"would": "record"}
        self.runs.append({"id": ctx.action_id, "target": ctx.target.key, "playbook": ctx.playbook})
        if params.sleep:
            await asyncio.sleep(params.sleep)
        if params.fail:
            raise RuntimeError("boom")
        return {"recorded": True}


ConfigFactory = Callable[..., Config]


def record_playbook(**fields: Any) -> dict[str, Any]:
    """The `rec` playbook: the `record` action on TestAlert, with these fields on top."""
    return {"name": "rec", "match": {"alertname": "TestAlert"}, "action": "record", **fields}


def raw_config(folder: Path, **overrides: Any) -> dict[str, Any]:
    """A configuration as its YAML holds it; defaults: token auth, SQLite journal in `folder`, one dummy target,
    enforce, the `rec` playbook."""
    raw: dict[str, Any] = {
        "mode": "enforce",
        "token": TOKEN,
        "journal": f"sqlite:///{folder / 'journal.db'}",
        "targets": [{"name": "production", "dsn": "postgresql://nobody@127.0.0.1:1/none"}],
        "playbooks": [record_playbook()],
    }
    raw.update(overrides)
    return raw


def config_file(folder: Path, **overrides: Any) -> Path:
    """`raw_config(folder, **overrides)` written to `folder`/responder.yml, for a responder run as a process."""
    path = folder / "responder.yml"
    path.write_text(yaml.safe_dump(raw_config(folder, **overrides)))
    return path


ClientFactory = Callable[[Config], Awaitable[TestClient[web.Request, web.Application]]]


def alert(
    alertname: str = "TestAlert",
    status: str = "firing",
    fingerprint: str | None = None,
    starts_at: str = "2026-11-24T03:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": alertname, "severity": "critical", **labels},
        "annotations": {"summary": "test"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint or uuid.uuid4().hex[:16],
    }


def payload(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "status": status,
        "receiver": "pgwarden",
        "groupKey": '{}:{alertname="TestAlert"}',
        "truncatedAlerts": 0,
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


async def wait_done(
    client: TestClient[web.Request, web.Application], action_id: int, wait: float = 20.0
) -> dict[str, Any]:
    """Poll /actions until the action reaches state `done` (or `pending`)."""
    deadline = time.monotonic() + wait
    while True:
        resp = await client.get("/actions?limit=1000", headers=AUTH)
        rows = (await resp.json())["actions"]
        row = next((r for r in rows if r["id"] == action_id), None)
        if row is not None and row["state"] in ("done", "pending"):
            return dict(row)
        if time.monotonic() > deadline:
            raise AssertionError(f"action {action_id} not done: {row}")
        await asyncio.sleep(0.05)


async def post_alerts(
    client: TestClient[web.Request, web.Application], *alerts: dict[str, Any]
) -> list[dict[str, Any]]:
    resp = await client.post("/webhook", json=payload(*alerts), headers=AUTH)
    assert resp.status == 202, await resp.text()
    decisions: list[dict[str, Any]] = (await resp.json())["decisions"]
    return decisions
