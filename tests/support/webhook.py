"""Alertmanager traffic in the responder tests: alerts, payloads, posting them, waiting for their actions."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.support.responder import AUTH


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
