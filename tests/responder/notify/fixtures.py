"""The notify tests' fixtures: a real journal (SQLite) and local Slack, Teams and PagerDuty services, each serving
for one test. Imported by the conftest of each test folder that uses them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from responder.journal import Journal, open_store
from tests.responder.notify.decisions import BOT_TOKEN, TEAMS_SECRET, WEBHOOK_SECRET
from tests.support.chat_receivers import PagerDutyEvents, SlackApi, SlackWebhook, TeamsWorkflow


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    journal = Journal(open_store(f"sqlite:///{tmp_path / 'journal.db'}"), "notify-test")
    await journal.start()
    try:
        yield journal
    finally:
        await journal.close()


@pytest.fixture
async def slack_api() -> AsyncIterator[SlackApi]:
    api = SlackApi(BOT_TOKEN)
    async with api.serving():
        yield api


@pytest.fixture
async def slack_webhook() -> AsyncIterator[SlackWebhook]:
    hook = SlackWebhook(WEBHOOK_SECRET)
    async with hook.serving():
        yield hook


@pytest.fixture
async def teams() -> AsyncIterator[TeamsWorkflow]:
    workflow = TeamsWorkflow(TEAMS_SECRET)
    async with workflow.serving():
        yield workflow


@pytest.fixture
async def pagerduty() -> AsyncIterator[PagerDutyEvents]:
    events = PagerDutyEvents()
    async with events.serving():
        yield events
