"""Notifications reach a webhook receiver: the payload's shape and signature, a follow-up when the outcome changes,
nothing queued without a route, a receiver down for a while (sent once when it is back), permanent refusals given
up, the rate limit's digest."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from responder.approvals.links import verify_link
from responder.notify.sender import SenderTuning
from responder.notify.transports.webhook import signature
from tests.responder.notify.conftest import FAST, HMAC_SECRET, PUBLIC_URL, AppFactory, notify_section
from tests.support.journal import journal_sql
from tests.support.receivers import WebhookReceiver
from tests.support.responder import APPROVE, AUTH, ConfigFactory, record_playbook
from tests.support.webhook import alert, post_alerts, wait_done

Client = TestClient[web.Request, web.Application]


async def notifications(client: Client) -> dict[tuple[str, str], float]:
    """`pgwarden_notifications_total` by (receiver, outcome)."""
    text = await (await client.get("/metrics")).text()
    return {
        (s.labels["receiver"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "pgwarden_notifications"
        for s in family.samples
        if s.name == "pgwarden_notifications_total"
    }


async def until(check: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def outbox(config_journal: str) -> list[tuple[Any, ...]]:
    return journal_sql(
        config_journal, "SELECT action_id, receiver, change, outcome FROM pgwarden_outbox ORDER BY id"
    )


async def test_a_pending_decision_then_its_outcome_reach_the_webhook_signed_with_links(
    make_config: ConfigFactory,
    app_for: AppFactory,
    receiver: WebhookReceiver,
    approvers: list[dict[str, str]],
) -> None:
    config = make_config(
        approvers=approvers,
        playbooks=[record_playbook(require_approval=True)],
        notify=notify_section(receiver),
    )
    client = await app_for(config)
    (decided,) = await post_alerts(client, alert(instance="db-1"))
    (first,) = [d.body for d in await receiver.wait_for(1)]
    assert receiver.refused == []  # signed with the receiver's secret, timestamp fresh
    shown = (await (await client.get("/actions", headers=AUTH)).json())["actions"][0]
    assert first["type"] == "decision" and first["decision"] == shown  # the decision as /actions shows it
    assert first["decision"]["state"] == "pending" and first["decision"]["id"] == decided["id"]
    assert first["link"] == f"{PUBLIC_URL}/ui/actions/{decided['id']}"
    assert first["approvals_needed"] == 1
    (link,) = first["approval_links"]
    assert link["approver"] == "alice" and link["url"].startswith(f"{PUBLIC_URL}/ui/confirm/")
    claim = verify_link(link["url"].rsplit("/", 1)[1], config.principals)
    assert (claim.action_id, claim.approver) == (decided["id"], "alice")
    headers = receiver.received[0].headers
    assert headers["X-Pgwarden-Signature"].startswith("sha256=") and headers["X-Pgwarden-Timestamp"].isdigit()

    resp = await client.post(f"/actions/{decided['id']}/approve", headers=APPROVE)
    assert resp.status == 202
    await wait_done(client, decided["id"])

    async def ended() -> bool:
        return any(d["decision"]["outcome"] == "succeeded" for d in receiver.decisions())

    await until(ended)
    last = receiver.decisions()[-1]["decision"]
    assert (last["outcome"], last["decided_by"]) == ("succeeded", "alice")
    assert all(d["approval_links"] == [] for d in receiver.decisions()[1:])  # decided: no links any more
    # the approval and the outcome were queued for the receiver; every notice was sent
    changes = [(change, outcome) for _, _, change, outcome in outbox(config.journal)]
    assert changes[0] == ("pending", "sent") and changes[-1] == ("succeeded", "sent")
    assert ("approved", "sent") in changes
    counted = await notifications(client)
    assert counted[("audit", "sent")] == len(receiver.received) and ("audit", "failed") not in counted


async def test_a_decision_no_route_matches_queues_nothing(
    make_config: ConfigFactory, app_for: AppFactory, receiver: WebhookReceiver
) -> None:
    routes = [{"receiver": "audit", "outcomes": ["failed"]}, {"receiver": "audit", "playbooks": ["other-*"]}]
    config = make_config(notify=notify_section(receiver, routes))
    client = await app_for(config)
    (decided,) = await post_alerts(client, alert())
    assert (await wait_done(client, decided["id"]))["outcome"] == "succeeded"
    await asyncio.sleep(0.3)
    assert outbox(config.journal) == [] and receiver.attempts == 0
    # ... and a failure does match: queued and sent
    failing = make_config(
        notify=notify_section(receiver, routes), playbooks=[record_playbook(params={"fail": True})]
    )
    await client.close()
    client = await app_for(failing)
    (failed,) = await post_alerts(client, alert())
    assert (await wait_done(client, failed["id"]))["outcome"] == "failed"
    await receiver.wait_for(1)
    assert [d["decision"]["id"] for d in receiver.decisions()] == [failed["id"]]


async def test_without_notify_nothing_is_queued(make_config: ConfigFactory, app_for: AppFactory) -> None:
    config = make_config()
    client = await app_for(config)
    (decided,) = await post_alerts(client, alert())
    await wait_done(client, decided["id"])
    assert outbox(config.journal) == []


@pytest.mark.parametrize("how", ["refused", "503"])
async def test_a_receiver_down_for_a_while_gets_each_notice_once_when_it_is_back(
    make_config: ConfigFactory,
    app_for: AppFactory,
    receiver: WebhookReceiver,
    how: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="responder.notify")
    config = make_config(notify=notify_section(receiver))
    client = await app_for(config)
    await receiver.down(how)  # type: ignore[arg-type]
    decided = await post_alerts(client, alert(), alert(), alert())
    ids = sorted(d["id"] for d in decided)

    async def retried() -> bool:
        return (await notifications(client)).get(("audit", "failed"), 0) >= 3 * 3

    await until(retried)  # several attempts each, backing off, while the webhook kept answering
    assert receiver.received == []
    metrics = await (await client.get("/metrics")).text()
    assert 'pgwarden_notifications_queued{receiver="audit"} 3.0' in metrics
    failures = [r for r in caplog.records if r.getMessage() == "notification failed, will retry"]
    assert {r.__dict__["receiver"] for r in failures} == {"audit"}
    assert {r.__dict__["action_id"] for r in failures} == set(ids)
    await receiver.up()
    await receiver.wait_for(3)
    await asyncio.sleep(FAST.backoff_cap * 2)  # time for any duplicate to arrive
    assert sorted(d["decision"]["id"] for d in receiver.decisions()) == ids  # each once
    counted = await notifications(client)
    assert counted[("audit", "sent")] == 3 and ("audit", "gave_up") not in counted
    assert [outcome for *_, outcome in outbox(config.journal)] == ["sent"] * 3
    metrics = await (await client.get("/metrics")).text()
    assert 'pgwarden_notifications_queued{receiver="audit"} 0.0' in metrics


async def test_a_permanent_refusal_is_given_up_once_and_retry_after_is_honoured(
    make_config: ConfigFactory,
    app_for: AppFactory,
    receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="responder.notify")
    receiver.hmac_secret = "not-the-configured-secret"  # every request fails its check: 401, permanent
    config = make_config(notify=notify_section(receiver))
    client = await app_for(config)
    (decided,) = await post_alerts(client, alert())

    async def given_up() -> bool:
        return (await notifications(client)).get(("audit", "gave_up"), 0) == 1

    await until(given_up)
    await asyncio.sleep(0.3)
    assert receiver.attempts == 1 and receiver.refused == ["bad signature"]
    (line,) = [r for r in caplog.records if r.getMessage() == "notification given up"]
    assert (line.__dict__["receiver"], line.__dict__["action_id"], line.__dict__["error"]) == (
        "audit", decided["id"], "HTTP 401"
    )  # fmt: skip

    # 429 with Retry-After: the next attempt waits at least that long, not the (shorter) backoff
    receiver.hmac_secret = config.notify.receivers[0].signing_secret
    receiver.retry_after = "1"
    await receiver.down("429")
    (later,) = await post_alerts(client, alert())
    await until(lambda: _attempted(receiver, 2))
    refused_at = time.monotonic()
    await receiver.up()
    await receiver.wait_for(1)
    assert time.monotonic() - refused_at >= 0.9
    assert [d["decision"]["id"] for d in receiver.decisions()] == [later["id"]]


async def _attempted(receiver: WebhookReceiver, count: int) -> bool:
    return receiver.attempts >= count


async def test_over_the_rate_limit_notices_become_one_digest(
    make_config: ConfigFactory, app_for: AppFactory, receiver: WebhookReceiver
) -> None:
    config = make_config(notify=notify_section(receiver, rate_per_minute=2))
    client = await app_for(config, SenderTuning(**{**FAST.__dict__, "window": 1.5}))
    decided = await post_alerts(client, *(alert() for _ in range(14)))
    ids = sorted(d["id"] for d in decided)
    await receiver.wait_for(3, within=15)
    await asyncio.sleep(2.0)  # another window: nothing more comes
    assert len(receiver.received) == 3
    singles = [d["decision"]["id"] for d in receiver.decisions()]
    (digest,) = receiver.digests()
    assert len(singles) == 2 and digest["count"] == 12
    held = sorted(set(ids) - set(singles))
    assert digest["action_ids"] == held[-10:] and digest["link"] == f"{PUBLIC_URL}/ui"
    assert receiver.received[2].at - receiver.received[0].at >= 1.4  # the digest waited for the window
    counted = await notifications(client)
    assert (counted[("audit", "sent")], counted[("audit", "digested")]) == (2, 12)
    outcomes = sorted(outcome for *_, outcome in outbox(config.journal))
    assert outcomes == ["digested"] * 12 + ["sent"] * 2


def documented_verification() -> Any:
    """The Python of docs/responder.md's "Webhook receivers", as a consumer would paste it."""
    doc = (Path(__file__).resolve().parents[3] / "docs" / "responder.md").read_text()
    section = doc.split("### Webhook receivers", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec(code, scope)
    return scope["from_pgwarden"]


async def test_the_documented_verification_accepts_pgwarden_and_refuses_forgeries(
    make_config: ConfigFactory, app_for: AppFactory, receiver: WebhookReceiver
) -> None:
    client = await app_for(make_config(notify=notify_section(receiver)))
    await post_alerts(client, alert())
    (delivery,) = await receiver.wait_for(1)
    verify = documented_verification()
    secret = HMAC_SECRET.encode()
    assert verify(secret, delivery.headers, delivery.raw)
    assert not verify(b"another-secret", delivery.headers, delivery.raw)
    assert not verify(secret, delivery.headers, delivery.raw.replace(b"succeeded", b"failed"))
    old = str(int(time.time()) - 301)  # signed rightly, but too long ago: a replay
    stale = {"X-Pgwarden-Timestamp": old, "X-Pgwarden-Signature": signature(HMAC_SECRET, old, delivery.raw)}
    assert not verify(secret, stale, delivery.raw)
    fresh = str(int(time.time()))
    assert verify(
        secret,
        {"X-Pgwarden-Timestamp": fresh, "X-Pgwarden-Signature": signature(HMAC_SECRET, fresh, delivery.raw)},
        delivery.raw,
    )
