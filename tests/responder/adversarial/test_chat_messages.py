"""Hostile text in a decision (labels, an error, a query: what an alert's sender or a database user controls)
cannot mention @channel, dress up a link or break a message in Slack, Teams or PagerDuty; and no receiver's
secret (bot token, webhook URL, routing key) reaches an exception, a traceback or a log line, however the
send fails."""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

import aiohttp
import pytest

from devtools.pgserver import free_port
from responder.journal import Journal
from responder.notify.config import Receiver
from responder.notify.model import DeliveryError, Notice, Transport
from responder.notify.transports.pagerduty import TRANSPORT as PAGERDUTY
from responder.notify.transports.slack import TRANSPORT as SLACK
from responder.notify.transports.teams import TRANSPORT as TEAMS
from responder.outcomes import Outcome
from tests.responder.notify.decisions import (
    BOT_TOKEN,
    ROUTING_KEY,
    SIGNING_SECRET,
    TEAMS_SECRET,
    WEBHOOK_SECRET,
    alert,
    approve_and_run,
    journaled,
    notice,
)
from tests.support.chat_receivers import PagerDutyEvents, SlackApi, SlackWebhook, TeamsWorkflow

HOSTILE = {
    "alertname": "PostgresLongRunningQuery",
    "target": "prod",
    "team": "<!channel>",
    "runbook": "<https://evil.example|click here to approve>",
    "note": "@here deploy now & <@U123>",
    "md": "[approve](https://evil.example) **urgent**",
    "huge": "A" * 10_000,
}
LONG_ERROR = "<!everyone> " + "x" * 10_000
BROADCAST = re.compile(r"@(here|channel|everyone)\b|<!|<@|<https?:", re.IGNORECASE)


async def _hostile(journal: Journal) -> Notice:
    pending = await journaled(journal, alert(HOSTILE))
    return notice(
        await approve_and_run(journal, pending.id, Outcome.FAILED, {"note": HOSTILE["md"]}, LONG_ERROR)
    )


def _mrkdwn(value: Any) -> list[str]:
    """Every mrkdwn text in Slack blocks."""
    if isinstance(value, dict):
        own = [value["text"]] if value.get("type") == "mrkdwn" else []
        return own + [t for v in value.values() for t in _mrkdwn(v)]
    if isinstance(value, list):
        return [t for v in value for t in _mrkdwn(v)]
    return []


async def test_slack_messages_escape_hostile_text(
    journal: Journal, slack_api: SlackApi, slack_webhook: SlackWebhook
) -> None:
    hostile = await _hostile(journal)
    bot = Receiver("bot", "slack", slack_api.api_url, BOT_TOKEN, "#db-oncall", SIGNING_SECRET)
    ref = await SLACK.send(bot, hostile, None)  # accepted: Block Kit's limits held
    assert ref is not None
    await SLACK.send(Receiver("hook", "slack", slack_webhook.webhook_url), hostile, None)
    for message in (slack_api.messages[(ref.channel or "", ref.ts or "")], slack_webhook.posted[0]):
        texts = [message["text"], *_mrkdwn(message["blocks"])]
        ours = [m.group(0) for t in texts for m in BROADCAST.finditer(t)]
        # Only our own link to the console is a <https:...> link; nothing hostile made one.
        assert all(o == "<https:" for o in ours) and sum(t.count("<https://pgwarden") for t in texts) == len(
            ours
        )
        said = "\n".join(texts)
        assert "team=&lt;!channel&gt;" in said and "note=@\u200bhere deploy now &amp; &lt;@U123&gt;" in said
        assert "evil.example|" not in said.replace("&lt;https://evil.example|", "")


async def test_teams_cards_escape_hostile_markdown(journal: Journal, teams: TeamsWorkflow) -> None:
    await TEAMS.send(Receiver("teams", "teams", teams.webhook_url), await _hostile(journal), None)
    (card,) = teams.cards  # accepted: under Teams' 28 KB
    text = str(card["body"])
    assert r"\\[approve\\]\\(https://evil.example\\)" in text  # (str() doubles each backslash)
    assert "[approve](" not in text and "**urgent**" not in text


async def test_pagerduty_caps_the_summary(journal: Journal, pagerduty: PagerDutyEvents) -> None:
    await PAGERDUTY.send(
        Receiver("pd", "pagerduty", pagerduty.change_url, ROUTING_KEY), await _hostile(journal), None
    )
    (event,) = pagerduty.events  # accepted: summary within 1,024 characters
    assert len(event["payload"]["summary"]) <= 1024 and event["payload"]["summary"].endswith("…")


SECRETS = (BOT_TOKEN, WEBHOOK_SECRET, TEAMS_SECRET, ROUTING_KEY)


def _told(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


async def test_no_secret_reaches_an_exception_or_a_log_whatever_fails(
    journal: Journal,
    slack_api: SlackApi,
    slack_webhook: SlackWebhook,
    teams: TeamsWorkflow,
    pagerduty: PagerDutyEvents,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    decision = notice(await journaled(journal))
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    receivers = [
        Receiver("bot", "slack", slack_api.api_url, BOT_TOKEN, "#db-oncall"),
        Receiver("hook", "slack", slack_webhook.webhook_url),
        Receiver("teams", "teams", teams.webhook_url),
        Receiver("pd", "pagerduty", pagerduty.change_url, ROUTING_KEY),
        Receiver("bot-down", "slack", f"{closed}/api/", BOT_TOKEN, "#db-oncall"),
        Receiver("hook-down", "slack", f"{closed}/services/T0/B0/{WEBHOOK_SECRET}"),
        Receiver("teams-down", "teams", f"{closed}/workflows/{TEAMS_SECRET}"),
        Receiver("pd-down", "pagerduty", f"{closed}/v2/change/enqueue", ROUTING_KEY),
    ]
    transports: dict[str, Transport] = {"slack": SLACK, "teams": TEAMS, "pagerduty": PAGERDUTY}
    told = []
    # Each service's error answer echoes its own secret, as a careless server might.
    for service, secret in ((slack_api, BOT_TOKEN), (slack_webhook, WEBHOOK_SECRET), (teams, teams.webhook_url),
                            (pagerduty, ROUTING_KEY)):  # fmt: skip
        service.fail_next(500, f"server error for {secret}")
    for receiver in receivers:
        transport = transports[receiver.kind]
        for _ in range(2):  # the first send fails on the injected 500 (or no listener), the second succeeds
            try:
                await transport.send(receiver, decision, None)
            except DeliveryError as exc:
                assert not exc.permanent
                told.append(_told(exc))
    assert len(told) == 4 + 2 * 4  # each service's injected failure, every send to a closed port
    assert any("could not reach the receiver" in t for t in told)
    for secret in SECRETS:
        assert not any(secret in t for t in told), secret
        assert secret not in caplog.text, secret
        assert not any(secret in repr(r) for r in receivers)


async def test_the_local_slack_preview_draws_hostile_text_as_text(
    journal: Journal, slack_api: SlackApi
) -> None:
    await SLACK.send(
        Receiver("bot", "slack", slack_api.api_url, BOT_TOKEN, "#db-oncall"), await _hostile(journal), None
    )
    async with aiohttp.ClientSession() as session, session.get(f"{slack_api.url}/preview") as resp:
        shown = await resp.text()
    assert 'href="https://pgwarden.example.internal/ui/actions/' in shown
    assert 'href="https://evil' not in shown and "<!channel>" not in shown and "&lt;!channel&gt;" in shown
