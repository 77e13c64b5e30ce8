"""Decisions for the notify tests, journaled through a real Journal (SQLite) and read back as the sender would
read them: pending, approved, run with a plan and a result, rejected, scheduled, an operator's."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from responder.decision import AlertTrigger, Decision, OperatorTrigger, ScheduleTrigger, Trigger
from responder.journal import Claim, Journal
from responder.journal.rows import ActionRow
from responder.notify.model import Notice
from responder.outcomes import Outcome, State
from responder.targets import PostgresTarget, Target

PUBLIC_URL = "https://pgwarden.example.internal"
# The receivers' secrets: none may appear in an exception or a log line.
BOT_TOKEN = "xoxb-1111-2222-secret-bot-token"
WEBHOOK_SECRET = "webhook-secret-Xy9"
TEAMS_SECRET = "teams-secret-Qz7"
ROUTING_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY32"  # PagerDuty's are 32 characters
SIGNING_SECRET = "slack-signing-secret-8f2"
LABELS = {
    "alertname": "PostgresLongRunningQuery",
    "target": "prod",
    "datname": "shop",
    "severity": "critical",
}
TARGET = PostgresTarget("prod", "host=db.internal dbname=shop", "db.internal:5432/shop", datname="shop")
PLAN = {
    "server": "prod",
    "database": "shop",
    "steps": ["cancel"],
    "min_duration_seconds": 300,
    "backends": [{"pid": 23630, "usename": "app", "datname": "shop", "query": "SELECT pg_sleep(600)",
                  "running_seconds": 412.0}],
}  # fmt: skip
RESULT = {"cancelled": [23630], "terminated": []}


def alert(labels: Mapping[str, str] = LABELS, fingerprint: str = "fp-1") -> AlertTrigger:
    return AlertTrigger(
        str(labels.get("alertname", "Test")), fingerprint, "2026-12-07T13:00:00Z", "firing", labels
    )


async def journaled(
    journal: Journal,
    trigger: Trigger | None = None,
    state: State = State.PENDING,
    mode: str = "enforce",
    playbook: str = "cancel-long-query",
    action: str = "terminate_queries",
    target: Target = TARGET,
) -> ActionRow:
    trigger = trigger or alert()
    key = f"{playbook}|{uuid.uuid4().hex}"  # a new decision each time, never a duplicate
    (decision,) = await journal.record(
        [Decision(trigger, state, playbook, action, mode, target, dedup_key=key)]
    )
    return await row(journal, decision.action_id)


async def row(journal: Journal, action_id: int) -> ActionRow:
    found = await journal.get(action_id)
    assert found is not None
    return found


async def approve_and_run(
    journal: Journal,
    action_id: int,
    outcome: Outcome = Outcome.SUCCEEDED,
    result: Any = RESULT,
    error: str | None = None,
    who: str = "alice",
) -> ActionRow:
    """The approval, the claim, the plan and the outcome, as the dispatcher journals them."""
    assert str(await journal.decide(action_id, True, who, 3600)) == "approved"
    claimed = await journal.claim(Claim(action_id, "cancel-long-query", TARGET.key, 0.0, None))
    assert claimed is not None and claimed.state is State.RUNNING
    await journal.set_plan(action_id, PLAN)
    await journal.finish(action_id, outcome, result, error)
    return await row(journal, action_id)


def notice(action_row: ActionRow, approvers: tuple[str, ...] = ()) -> Notice:
    links = tuple((name, f"{PUBLIC_URL}/ui/confirm/signed-{name}-{action_row.id}") for name in approvers)
    return Notice(action_row, f"{PUBLIC_URL}/ui/actions/{action_row.id}", links)


def schedule(name: str = "weekly-drill", run_now: bool = False) -> ScheduleTrigger:
    return ScheduleTrigger(name, "2026-12-07T03:00:00.000Z", {"dbidentifier": "prod-db"}, run_now)


def operator(command: str = "recover") -> OperatorTrigger:
    return OperatorTrigger(command, "prod-db", "2026-12-07T12:00:00.000Z", {"dbidentifier": "prod-db"})
