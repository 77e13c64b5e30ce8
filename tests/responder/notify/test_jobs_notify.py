"""Scheduled jobs and operator commands notify like alert-driven decisions: a schedule's run (drills, reports)
and an operator command's row (`recover`, `migrate run`, `migrate backfill`, written by their own process) reach
the receivers their routes name, sent by a responder's sender."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from responder.decision import Decision, OperatorTrigger
from responder.operator import operator_journal
from responder.outcomes import Outcome, State
from responder.targets import PostgresTarget
from tests.responder.notify.conftest import AppFactory, notify_section
from tests.support.receivers import WebhookReceiver
from tests.support.responder import AUTH, ConfigFactory
from tests.support.webhook import wait_done

NIGHTLY = {"name": "nightly", "cron": "0 3 * * *", "action": "record", "target": {"target": "production"}}


async def _until(check: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_scheduled_run_is_notified(
    make_config: ConfigFactory, app_for: AppFactory, receiver: WebhookReceiver
) -> None:
    routes = [{"receiver": "audit", "outcomes": ["succeeded", "failed"], "playbooks": ["nightly"]}]
    client = await app_for(make_config(schedules=[NIGHTLY], notify=notify_section(receiver, routes)))
    resp = await client.post("/schedules/nightly/run", headers=AUTH)
    assert resp.status == 202
    ran = await wait_done(client, (await resp.json())["id"])
    await _until(lambda: len(receiver.decisions()) == 1)
    (notice,) = [d["decision"] for d in receiver.decisions()]
    assert (notice["id"], notice["playbook"], notice["outcome"]) == (ran["id"], "nightly", "succeeded")
    assert notice["alert"]["labels"]["schedule"] == "nightly"


async def test_an_operator_commands_row_is_sent_by_a_responder(
    make_config: ConfigFactory, app_for: AppFactory, receiver: WebhookReceiver
) -> None:
    routes = [{"receiver": "audit", "outcomes": ["failed"], "playbooks": ["migrate"]}]
    config = make_config(notify=notify_section(receiver, routes))
    target = PostgresTarget("production", "host=127.0.0.1 dbname=app", "127.0.0.1:5432/app", datname="app")
    trigger = OperatorTrigger(
        "migrate run", "production", "2026-12-07T12:00:00.000Z", {"target": "production"}
    )
    async with operator_journal(config, "migrate-cli") as journal:  # the command's own process
        (row,) = await journal.record(
            [Decision(trigger, State.RUNNING, "migrate", "migrate_run", "enforce", target, dedup_key="m-1")]
        )
        await journal.finish(row.action_id, Outcome.FAILED, None, "lock_timeout: the ALTER waited too long")
    client = await app_for(config)  # a responder on the same journal sends what the command queued
    await _until(lambda: len(receiver.decisions()) == 1)
    (notice,) = [d["decision"] for d in receiver.decisions()]
    assert (notice["id"], notice["outcome"]) == (row.action_id, "failed")
    assert notice["error"] == "lock_timeout: the ALTER waited too long"
    await client.close()
