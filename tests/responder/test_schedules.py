"""Schedules: config errors, a tick decided once, catch-up, run now, /schedules, and the playbook guards
(cooldown, dry-run, approval) that scheduled decisions share with alert-driven ones. The `record` test action
records each run (tests.support.responder.Recorder); the journal is the real SQLite one."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from responder import keys
from responder.config import ConfigError
from responder.scheduling.scheduler import Scheduler
from tests.support.clock import TEST_NOW
from tests.support.responder import APPROVE, AUTH, ClientFactory, ConfigFactory, Recorder
from tests.support.webhook import wait_done

Client = TestClient[web.Request, web.Application]
SUNDAY_3AM = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def schedule(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "nightly",
        "cron": "0 3 * * *",
        "action": "record",
        "target": {"target": "production"},
    }
    return {**base, **overrides}


def _scheduler(client: Client) -> Scheduler:
    return client.app[keys.SCHEDULER]


async def _outcomes(client: Client) -> list[tuple[str, str | None]]:
    rows = (await (await client.get("/actions?limit=100", headers=AUTH)).json())["actions"]
    return sorted((str(r["alert"]["status"]), r["outcome"]) for r in rows)


def _errors(make_config: ConfigFactory, *schedules: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as exc:
        make_config(schedules=list(schedules))
    return "\n".join(exc.value.errors)


def test_config_errors_name_the_key_path(make_config: ConfigFactory) -> None:
    assert "schedules.0.cron: '0 3 * *' is not a five-field cron expression" in _errors(
        make_config, schedule(cron="0 3 * *")
    )
    text = _errors(
        make_config,
        schedule(name="b", action="nope"),
        schedule(name="rec"),  # the name of a playbook
        schedule(name="c", target={"target": "elsewhere"}),
    )
    assert "schedules.0.action: unknown action 'nope'" in text
    assert "schedules.1.name: 'rec' is a playbook's name" in text
    assert "schedules.2.target: target: must name one of the configured targets ['production']" in text


async def test_a_tick_is_decided_once(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    client = await client_for(make_config(schedules=[schedule()]))
    scheduler = _scheduler(client)
    scheduler.next_run["nightly"] = SUNDAY_3AM
    await scheduler.tick()
    assert scheduler.next_run["nightly"] > TEST_NOW  # the missed ones are not replayed one by one
    (status,) = await client.app[keys.SCHEDULER].status()
    await wait_done(client, status["last_decision_id"])
    scheduler.next_run["nightly"] = SUNDAY_3AM  # the same tick again: another replica, or a restart
    await scheduler.tick()
    await asyncio.sleep(0.2)
    assert len(recorder.runs) == 1
    assert await _outcomes(client) == [("scheduled", "duplicate"), ("scheduled", "succeeded")]


async def test_catch_up_runs_a_missed_tick_once_at_start_up(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    client = await client_for(make_config(schedules=[schedule(catch_up="6h"), schedule(name="late")]))
    scheduler = _scheduler(client)
    await scheduler.start(now=datetime(2026, 11, 29, 8, 0, tzinfo=UTC))  # 5 h after the 03:00 tick
    await scheduler.start(now=datetime(2026, 11, 29, 8, 30, tzinfo=UTC))  # a restart: already journaled
    await scheduler.start(now=datetime(2026, 11, 30, 10, 0, tzinfo=UTC))  # 7 h late: too late
    deadline = time.monotonic() + 10
    while not recorder.runs:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert [r["playbook"] for r in recorder.runs] == ["nightly"]  # `late` has no catch_up
    rows = (await (await client.get("/actions", headers=AUTH)).json())["actions"]
    assert [r["alert"]["startsAt"] for r in rows] == ["2026-11-29T03:00:00.000Z"]


async def test_run_now_and_the_schedules_endpoint(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    client = await client_for(make_config(schedules=[schedule()]))
    assert (await client.get("/schedules")).status == 401
    assert (await client.post("/schedules/nightly/run")).status == 401
    assert (await client.post("/schedules/nope/run", headers=AUTH)).status == 404
    (before,) = await (await client.get("/schedules", headers=AUTH)).json()
    assert (
        before["last_run"] is None and before["last_outcome"] is None and before["last_decision_id"] is None
    )
    assert before["next_run"].endswith(":00Z") and before["next_run"][11:13] == "03"
    resp = await client.post("/schedules/nightly/run", headers=AUTH)
    assert resp.status == 202
    row = await wait_done(client, (await resp.json())["id"])
    assert row["outcome"] == "succeeded" and row["playbook"] == "nightly"
    assert row["alert"]["labels"] == {"schedule": "nightly", "target": "production"}
    (after,) = await (await client.get("/schedules", headers=AUTH)).json()
    assert set(after) >= {"name", "cron", "action", "mode", "target", "next_run", "last_run", "last_outcome"}
    assert after["name"] == "nightly" and after["cron"] == "0 3 * * *" and after["action"] == "record"
    assert after["mode"] == "enforce" and after["target"].startswith("production (")
    assert after["last_outcome"] == "succeeded" and after["last_decision_id"] == row["id"]
    assert after["last_run"].endswith("Z")
    assert len(recorder.runs) == 1


async def test_scheduled_decisions_share_cooldown_dry_run_and_approval(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder, approvers: list[dict[str, str]]
) -> None:
    client = await client_for(
        make_config(
            approvers=approvers,
            schedules=[
                schedule(cooldown="1h"),
                schedule(name="planned", mode="dry-run"),
                schedule(name="asked", require_approval=True),
            ],
        )
    )

    async def run(name: str) -> dict[str, Any]:
        resp = await client.post(f"/schedules/{name}/run", headers=AUTH)
        return await wait_done(client, (await resp.json())["id"])

    assert (await run("nightly"))["outcome"] == "succeeded"
    second = await run("nightly")
    assert second["outcome"] == "cooldown" and "cooldown" in second["error"]
    assert (await run("planned"))["outcome"] == "dry_run"
    pending = await run("asked")
    assert pending["state"] == "pending"
    resp = await client.post(f"/actions/{pending['id']}/approve", headers=APPROVE)
    assert resp.status == 202
    approved = await wait_done(client, pending["id"])
    assert approved["outcome"] == "succeeded", approved
    assert [r["playbook"] for r in recorder.runs] == ["nightly", "asked"]


async def test_housekeeping_fires_due_ticks(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    client = await client_for(make_config(replica_timeout="1s", schedules=[schedule()]))
    _scheduler(client).next_run["nightly"] = SUNDAY_3AM
    deadline = time.monotonic() + 15
    while not recorder.runs:
        assert time.monotonic() < deadline, "housekeeping never ticked the scheduler"
        await asyncio.sleep(0.05)
    assert client.app[keys.DISPATCHER].periodic == [_scheduler(client).tick, client.app[keys.DRILLS].tick]
