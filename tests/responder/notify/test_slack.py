"""Slack against a local Web API and incoming webhook that check requests as Slack does: Block Kit, the
Approve/Reject buttons, one message updated in place (bot token) or followed up (webhook), errors mapped."""

from __future__ import annotations

from typing import Any

import pytest

from responder.journal import Journal
from responder.notify.config import Receiver
from responder.notify.model import DeliveryError, Digest, MessageRef
from responder.notify.slack_blocks import APPROVE_ACTION, REJECT_ACTION
from responder.notify.transports.slack import TRANSPORT
from tests.responder.notify.decisions import (
    BOT_TOKEN,
    SIGNING_SECRET,
    WEBHOOK_SECRET,
    approve_and_run,
    journaled,
    notice,
    row,
)
from tests.support.chat_receivers import SlackApi, SlackWebhook, block_errors


def bot(api: SlackApi, token: str = BOT_TOKEN, channel: str = "#db-oncall") -> Receiver:
    return Receiver("oncall-slack", "slack", api.api_url, token, channel, SIGNING_SECRET)


def webhook(hook: SlackWebhook, signing_secret: str | None = SIGNING_SECRET) -> Receiver:
    return Receiver("oncall-webhook", "slack", hook.webhook_url, None, None, signing_secret)


def _types(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["type"] for b in blocks]


def _buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def _context(blocks: list[dict[str, Any]]) -> str:
    return " ".join(e["text"] for b in blocks if b["type"] == "context" for e in b["elements"])


async def test_a_bot_posts_once_then_updates_the_same_message_in_place(
    journal: Journal, slack_api: SlackApi
) -> None:
    pending = await journaled(journal)
    ref = await TRANSPORT.send(bot(slack_api), notice(pending), None)
    assert ref is not None and ref.channel == "C0DBONCALL" and ref.ts
    shown = slack_api.messages[(ref.channel, ref.ts)]
    assert _types(shown["blocks"])[0] == "header" and "actions" in _types(shown["blocks"])
    approve, reject = _buttons(shown["blocks"])
    assert (approve["action_id"], approve["value"], approve["style"]) == (
        APPROVE_ACTION,
        str(pending.id),
        "primary",
    )
    assert (reject["action_id"], reject["value"], reject["style"]) == (
        REJECT_ACTION,
        str(pending.id),
        "danger",
    )
    assert "confirm" in approve and "confirm" not in reject
    assert "waiting for an approval" in shown["text"] and f"#{pending.id}" in shown["text"]

    done = await approve_and_run(journal, pending.id)
    again = await TRANSPORT.send(bot(slack_api), notice(done), ref)
    assert again == ref and list(slack_api.messages) == [(ref.channel, ref.ts)]  # the same message, edited
    shown = slack_api.messages[(ref.channel, ref.ts)]
    assert _buttons(shown["blocks"]) == []  # decided: the buttons are gone
    assert "Approved by alice" in _context(shown["blocks"])
    assert "succeeded" in shown["blocks"][0]["text"]["text"]
    assert "SELECT pg_sleep(600)" in str(shown["blocks"])  # the plan
    methods = [path for path, _, _ in slack_api.requests]
    assert methods == ["/api/chat.postMessage", "/api/chat.update"]
    assert all(h["Authorization"] == f"Bearer {BOT_TOKEN}" for _, h, _ in slack_api.requests)
    assert all(block_errors(body["blocks"]) == [] for _, _, body in slack_api.requests)


async def test_a_rejection_says_who_rejected_it(journal: Journal, slack_api: SlackApi) -> None:
    pending = await journaled(journal)
    ref = await TRANSPORT.send(bot(slack_api), notice(pending), None)
    await journal.decide(pending.id, False, "bob", 3600)
    assert (
        ref is not None
        and await TRANSPORT.send(bot(slack_api), notice(await row(journal, pending.id)), ref) == ref
    )
    shown = slack_api.messages[(ref.channel or "", ref.ts or "")]
    assert _buttons(shown["blocks"]) == [] and "Rejected by bob" in _context(shown["blocks"])


async def test_an_update_of_a_message_slack_no_longer_has_posts_a_new_one(
    journal: Journal, slack_api: SlackApi
) -> None:
    row = await journaled(journal)
    ref = await TRANSPORT.send(bot(slack_api), notice(row), MessageRef("C0DBONCALL", "1700000000.000001"))
    assert ref is not None and ref.ts != "1700000000.000001" and (ref.channel, ref.ts) in slack_api.messages


@pytest.mark.parametrize(
    ("failure", "permanent", "retry_after"),
    [
        ((429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"}), False, 7.0),
        ((200, {"ok": False, "error": "internal_error"}, {}), False, None),
        ((503, "<html>Service Unavailable</html>", {}), False, None),
        ((200, {"ok": False, "error": "is_archived"}, {}), True, None),
    ],
)
async def test_slack_api_errors_map_to_retries_or_give_ups(
    journal: Journal,
    slack_api: SlackApi,
    failure: tuple[int, Any, dict[str, str]],
    permanent: bool,
    retry_after: float | None,
) -> None:
    status, body, headers = failure
    slack_api.fail_next(status, body, headers=headers)
    with pytest.raises(DeliveryError) as info:
        await TRANSPORT.send(bot(slack_api), notice(await journaled(journal)), None)
    assert (info.value.permanent, info.value.retry_after) == (permanent, retry_after)
    assert BOT_TOKEN not in str(info.value)


async def test_a_bad_token_or_an_unknown_channel_is_permanent(journal: Journal, slack_api: SlackApi) -> None:
    decision = notice(await journaled(journal))
    for receiver, code in (
        (bot(slack_api, token="xoxb-revoked"), "invalid_auth"),
        (bot(slack_api, channel="#nowhere"), "channel_not_found"),
    ):
        with pytest.raises(DeliveryError) as info:
            await TRANSPORT.send(receiver, decision, None)
        assert info.value.permanent and str(info.value) == f"slack: {code}"


async def test_a_webhook_posts_the_decision_then_a_follow_up_quoting_its_id(
    journal: Journal, slack_webhook: SlackWebhook
) -> None:
    pending = await journaled(journal)
    first = await TRANSPORT.send(webhook(slack_webhook), notice(pending), None)
    assert first == MessageRef(None, None)
    await journal.decide(pending.id, False, "bob", 3600)
    second = await TRANSPORT.send(webhook(slack_webhook), notice(await row(journal, pending.id)), first)
    assert second == first
    original, follow_up = slack_webhook.posted
    assert [b["action_id"] for b in _buttons(original["blocks"])] == [APPROVE_ACTION, REJECT_ACTION]
    assert follow_up["text"].startswith(f"Update on decision #{pending.id}: ")
    assert follow_up["blocks"][0]["text"]["text"].startswith("Update: ")
    assert _buttons(follow_up["blocks"]) == [] and "Rejected by bob" in _context(follow_up["blocks"])


async def test_without_a_signing_secret_a_pending_decision_links_each_approver_instead(
    journal: Journal, slack_webhook: SlackWebhook
) -> None:
    pending = await journaled(journal)
    await TRANSPORT.send(webhook(slack_webhook, None), notice(pending, approvers=("alice", "bob")), None)
    (posted,) = slack_webhook.posted
    assert _buttons(posted["blocks"]) == []
    text = str(posted["blocks"])
    assert f"/ui/confirm/signed-alice-{pending.id}|Approve as alice>" in text
    assert f"/ui/confirm/signed-bob-{pending.id}|Approve as bob>" in text


@pytest.mark.parametrize(
    ("failure", "permanent", "retry_after"),
    [
        ((429, "rate_limited", {"Retry-After": "30"}), False, 30.0),
        ((500, "rollup_error", {}), False, None),
        ((400, "invalid_blocks", {}), True, None),
        ((410, "channel_is_archived", {}), True, None),
    ],
)
async def test_webhook_errors_map_to_retries_or_give_ups(
    journal: Journal,
    slack_webhook: SlackWebhook,
    failure: tuple[int, str, dict[str, str]],
    permanent: bool,
    retry_after: float | None,
) -> None:
    status, body, headers = failure
    slack_webhook.fail_next(status, body, headers=headers)
    with pytest.raises(DeliveryError) as info:
        await TRANSPORT.send(webhook(slack_webhook), notice(await journaled(journal)), None)
    assert (info.value.permanent, info.value.retry_after) == (permanent, retry_after)
    assert str(info.value) == f"slack: HTTP {status}: {body}"


async def test_a_revoked_webhook_is_permanent_and_its_url_is_never_told(
    journal: Journal, slack_webhook: SlackWebhook
) -> None:
    revoked = Receiver("r", "slack", slack_webhook.webhook_url.replace(WEBHOOK_SECRET, "revoked-secret"))
    with pytest.raises(DeliveryError) as info:
        await TRANSPORT.send(revoked, notice(await journaled(journal)), None)
    assert info.value.permanent and str(info.value) == "slack: HTTP 404: no_service"


async def test_a_dry_run_says_so_and_a_digest_counts_what_was_held_back(
    journal: Journal, slack_api: SlackApi
) -> None:
    dry = await journaled(journal, mode="dry-run")
    ref = await TRANSPORT.send(bot(slack_api), notice(dry), None)
    assert ref is not None
    blocks = slack_api.messages[(ref.channel or "", ref.ts or "")]["blocks"]
    assert any(
        b.get("text", {}).get("text", "").startswith(":test_tube: *Dry run*: nothing is changed")
        for b in blocks
    )
    digest = await TRANSPORT.send(
        bot(slack_api), Digest(12, (40, 41), "https://pgwarden.example.internal/ui"), None
    )
    assert digest is not None
    shown = slack_api.messages[(digest.channel or "", digest.ts or "")]
    assert shown["blocks"][0]["text"]["text"] == "📬 12 more decisions"
    assert (
        "<https://pgwarden.example.internal/ui|See them in the pgwarden console>"
        in shown["blocks"][1]["text"]["text"]
    )
