"""The whole loop in Slack: a decision waiting for approval is posted with buttons; an approver presses Approve;
the decision runs; the same message is updated in place (buttons gone, who approved, the outcome)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from responder.config import Config
from tests.responder.notify.conftest import PUBLIC_URL, AppFactory
from tests.responder.notify.decisions import BOT_TOKEN
from tests.support.chat_receivers import SlackApi
from tests.support.responder import ConfigFactory, Recorder
from tests.support.slack_requests import (
    ALICE_SLACK,
    ResponseUrls,
    form,
    pending,
    press_payload,
    response_urls,
    send,
    signed,
    slack_people,
)
from tests.support.webhook import wait_done

__all__ = ["response_urls", "slack_people"]  # the fixtures


def _actions(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in message["blocks"] if b.get("type") == "actions"]


async def _until(check: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_approve_in_slack_and_the_message_is_updated_in_place(
    make_config: ConfigFactory,
    app_for: AppFactory,
    slack_api: SlackApi,
    slack_people: dict[str, Any],
    response_urls: ResponseUrls,
    recorder: Recorder,
    monkeypatch: Any,
) -> None:
    monkeypatch.setenv("PGW_TEST_SLACK_BOT", BOT_TOKEN)
    notify = slack_people["notify"]
    bot = {
        "name": "oncall-bot",
        "slack": {
            "bot_token_env": "PGW_TEST_SLACK_BOT",
            "channel": "#db-oncall",
            "signing_secret_env": "PGW_TEST_SLACK_SIGNING",
            "api_url": slack_api.api_url,
        },
    }
    config: Config = make_config(
        **{
            **slack_people,
            "notify": {**notify, "receivers": [*notify["receivers"], bot],
                       "routes": [{"receiver": "oncall-bot"}], "public_url": PUBLIC_URL},
        }
    )  # fmt: skip
    client = await app_for(config)
    waiting = await pending(client)
    await _until(lambda: len(slack_api.messages) == 1)
    ((key, posted),) = slack_api.messages.items()
    (buttons,) = _actions(posted)
    assert [(e["action_id"], e["value"]) for e in buttons["elements"]] == [
        ("pgwarden_approve", str(waiting)),
        ("pgwarden_reject", str(waiting)),
    ]

    press = press_payload("pgwarden_approve", str(waiting), ALICE_SLACK, response_urls.url("a"))
    resp = await send(client, signed(form(press)))
    assert resp.status == 200
    row = await wait_done(client, waiting)
    assert (row["outcome"], row["decided_by"]) == ("succeeded", "alice"), row
    assert [run["id"] for run in recorder.runs] == [waiting]

    def updated() -> bool:
        return key in slack_api.edited and "succeeded" in slack_api.messages[key]["text"]

    await _until(updated)
    assert list(slack_api.messages) == [key]  # the one message, edited; not a second one
    final = slack_api.messages[key]
    assert _actions(final) == []  # nothing left to press
    assert "alice" in str(final["blocks"]) and f"{PUBLIC_URL}/ui/actions/{waiting}" in str(final["blocks"])
    (reply,) = await response_urls.wait_for(1)
    assert reply["text"] == f"You approved decision #{waiting}: it runs now."
