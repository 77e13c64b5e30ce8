"""Teams (a Workflows webhook: Adaptive Cards, approval links, follow-ups) and PagerDuty (Events API v2 change
events) against local services that check requests as the real ones do; their errors mapped."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from responder.journal import Journal
from responder.notify.config import Receiver
from responder.notify.model import DeliveryError, Digest, MessageRef
from responder.notify.transports.pagerduty import TRANSPORT as PAGERDUTY
from responder.notify.transports.teams import TRANSPORT as TEAMS
from tests.responder.notify.decisions import (
    PLAN,
    PUBLIC_URL,
    ROUTING_KEY,
    TEAMS_SECRET,
    approve_and_run,
    journaled,
    notice,
)
from tests.support.chat_receivers import PagerDutyEvents, TeamsWorkflow


def teams_receiver(workflow: TeamsWorkflow) -> Receiver:
    return Receiver("dba-teams", "teams", workflow.webhook_url)


def pd_receiver(events: PagerDutyEvents, key: str = ROUTING_KEY) -> Receiver:
    return Receiver("pagerduty", "pagerduty", events.change_url, key)


def _texts(card: dict[str, Any]) -> list[str]:
    return [el["text"] for el in card["body"] if el["type"] == "TextBlock"]


def _facts(card: dict[str, Any]) -> dict[str, str]:
    return {f["title"]: f["value"] for el in card["body"] if el["type"] == "FactSet" for f in el["facts"]}


async def test_teams_gets_a_card_with_approval_links_then_a_follow_up(
    journal: Journal, teams: TeamsWorkflow
) -> None:
    pending = await journaled(journal)
    ref = await TEAMS.send(teams_receiver(teams), notice(pending, approvers=("alice", "bob")), None)
    assert ref == MessageRef(None, None)
    done = await approve_and_run(journal, pending.id)
    assert await TEAMS.send(teams_receiver(teams), notice(done, approvers=("alice", "bob")), ref) == ref
    first, follow_up = teams.cards
    assert first["version"] == "1.4" and first["type"] == "AdaptiveCard"
    assert [(a["type"], a["title"]) for a in first["actions"]] == [
        ("Action.OpenUrl", "Open in the pgwarden console"),
        ("Action.OpenUrl", "Approve as alice"),
        ("Action.OpenUrl", "Approve as bob"),
    ]
    assert first["actions"][0]["url"] == f"{PUBLIC_URL}/ui/actions/{pending.id}"
    assert first["actions"][1]["url"].endswith(f"/ui/confirm/signed-alice-{pending.id}")
    assert _facts(first)["Playbook"] == "cancel-long-query" and _facts(first)["Database"] == "shop"
    assert _texts(follow_up)[0].startswith(f"Update on decision #{pending.id}: ")
    assert [a["title"] for a in follow_up["actions"]] == ["Open in the pgwarden console"]  # decided: no links
    assert _facts(follow_up)["Decided by"] == "approved by alice"
    assert _facts(follow_up)["Outcome"] == "succeeded"


async def test_teams_shows_a_dry_run_plainly(journal: Journal, teams: TeamsWorkflow) -> None:
    dry = await journaled(journal, mode="dry-run")
    await TEAMS.send(teams_receiver(teams), notice(dry), None)
    (card,) = teams.cards
    assert any(t.startswith("**Dry run**: nothing is changed in dry-run mode") for t in _texts(card))


async def test_teams_digest(teams: TeamsWorkflow) -> None:
    await TEAMS.send(teams_receiver(teams), Digest(12, (40, 41), f"{PUBLIC_URL}/ui"), None)
    (card,) = teams.cards
    assert _texts(card)[0] == "📬 12 more decisions"


@pytest.mark.parametrize(
    ("status", "headers", "permanent", "retry_after"),
    [(429, {"Retry-After": "12"}, False, 12.0), (502, {}, False, None), (400, {}, True, None)],
)
async def test_teams_errors_map_to_retries_or_give_ups(
    journal: Journal,
    teams: TeamsWorkflow,
    status: int,
    headers: dict[str, str],
    permanent: bool,
    retry_after: float | None,
) -> None:
    teams.fail_next(status, {"error": {"message": f"no flow at {teams.webhook_url}"}}, headers=headers)
    with pytest.raises(DeliveryError) as info:
        await TEAMS.send(teams_receiver(teams), notice(await journaled(journal)), None)
    assert (info.value.permanent, info.value.retry_after) == (permanent, retry_after)
    assert TEAMS_SECRET not in str(info.value) and "***" in str(info.value)  # the echoed URL scrubbed


async def test_pagerduty_gets_a_change_event_per_outcome_change(
    journal: Journal, pagerduty: PagerDutyEvents
) -> None:
    pending = await journaled(journal)
    assert await PAGERDUTY.send(pd_receiver(pagerduty), notice(pending), None) is None
    done = await approve_and_run(journal, pending.id)
    assert await PAGERDUTY.send(pd_receiver(pagerduty), notice(done), None) is None
    waiting, succeeded = pagerduty.events
    assert waiting["routing_key"] == ROUTING_KEY
    assert "waiting for an approval" in waiting["payload"]["summary"]
    payload = succeeded["payload"]
    assert payload["summary"].startswith(f"pgwarden ✅ #{pending.id} cancel-long-query: cancelled pid 23630")
    assert payload["source"] == "prod (db.internal:5432/shop) database shop"
    assert datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00")).year >= 2026
    details = payload["custom_details"]
    assert details["plan"] == PLAN and details["outcome"] == "succeeded" and details["decided_by"] == "alice"
    assert details["facts"]["Why"]["Alert"] == "PostgresLongRunningQuery (firing)"
    assert succeeded["links"] == [
        {"href": f"{PUBLIC_URL}/ui/actions/{pending.id}", "text": "The decision in the pgwarden console"}
    ]


async def test_pagerduty_digest(pagerduty: PagerDutyEvents) -> None:
    await PAGERDUTY.send(pd_receiver(pagerduty), Digest(3, (7, 8, 9), None), None)
    (event,) = pagerduty.events
    assert (
        event["payload"]["summary"]
        == "pgwarden: 3 more decisions held back by this receiver's rate limit: #7, #8, #9"
    )
    assert event["payload"]["custom_details"] == {"count": 3, "action_ids": [7, 8, 9]}


async def test_pagerduty_refuses_a_bad_key_for_good(journal: Journal, pagerduty: PagerDutyEvents) -> None:
    with pytest.raises(DeliveryError) as info:
        await PAGERDUTY.send(pd_receiver(pagerduty, key="short"), notice(await journaled(journal)), None)
    assert info.value.permanent and "routing_key" in str(info.value) and pagerduty.events == []


@pytest.mark.parametrize(("status", "permanent"), [(429, False), (500, False), (400, True)])
async def test_pagerduty_errors_map_to_retries_or_give_ups(
    journal: Journal, pagerduty: PagerDutyEvents, status: int, permanent: bool
) -> None:
    pagerduty.fail_next(status, {"status": "error", "message": f"key {ROUTING_KEY} refused"})
    with pytest.raises(DeliveryError) as info:
        await PAGERDUTY.send(pd_receiver(pagerduty), notice(await journaled(journal)), None)
    assert info.value.permanent == permanent and ROUTING_KEY not in str(info.value)
