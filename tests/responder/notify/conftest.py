"""Notification fixtures: a journal, local Slack, Teams and PagerDuty (tests/responder/notify/fixtures.py); a local
webhook receiver, configs routing to it, and apps whose sender runs on short timings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from responder import keys
from responder.app import make_app
from responder.config import Config
from responder.notify.sender import SenderTuning
from tests.responder.notify.fixtures import journal, pagerduty, slack_api, slack_webhook, teams
from tests.support.clock import frozen_clock
from tests.support.receivers import WebhookReceiver

HMAC_SECRET = "audit-hmac-secret-0123456789"
PUBLIC_URL = "https://pgwarden.example.internal"
# Retries in tenths of seconds, not minutes; the rate limit's window in seconds.
FAST = SenderTuning(
    poll_interval=0.05,
    lease=5.0,
    batch=100,
    backoff_base=0.05,
    backoff_cap=0.4,
    give_up_after=60.0,
    window=60.0,
    min_interval=0.0,
    gauge_every=0.0,
)

__all__ = ["journal", "pagerduty", "slack_api", "slack_webhook", "teams"]

AppFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WebhookReceiver]:
    """A webhook receiver on 127.0.0.1 that checks pgwarden's HMAC (its secret in AUDIT_HMAC)."""
    monkeypatch.setenv("AUDIT_HMAC", HMAC_SECRET)
    hook = await WebhookReceiver(hmac_secret=HMAC_SECRET).start()
    yield hook
    await hook.stop()


def notify_section(
    hook: WebhookReceiver, routes: list[dict[str, Any]] | None = None, rate_per_minute: int = 20
) -> dict[str, Any]:
    """`notify:` with one webhook receiver, `audit`, at `hook` (every decision routed to it by default)."""
    return {
        "receivers": [
            {
                "name": "audit",
                "webhook": {"url": hook.url, "hmac_secret_env": "AUDIT_HMAC"},
                "rate_per_minute": rate_per_minute,
            }
        ],
        "routes": routes if routes is not None else [{"receiver": "audit", "outcomes": ["*"]}],
        "public_url": PUBLIC_URL,
    }


@pytest.fixture
def app_for(aiohttp_client: Any) -> AppFactory:
    """A responder on the test client whose sender runs on `tuning` (FAST by default)."""

    async def factory(
        config: Config, tuning: SenderTuning = FAST
    ) -> TestClient[web.Request, web.Application]:
        app = make_app(config, clock=frozen_clock)
        app[keys.NOTIFY_TUNING] = tuning
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return factory
