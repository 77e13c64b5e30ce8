"""Approvals from Slack's buttons: a press signed as Slack signs it decides under the approver its Slack user is
mapped to, through the console's own path; anyone else's press decides nothing and is told why, in an ephemeral
reply the local Slack's `response_url` receives and checks."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import ClientResponse

from responder import keys
from responder.approvals.slack import APPROVE_ACTION, REJECT_ACTION
from responder.config import Config
from tests.responder.ui.console import sign_in
from tests.support.responder import ClientFactory, ConfigFactory, Recorder
from tests.support.slack_requests import (
    ALICE_SLACK,
    BOB_SLACK,
    BOB_TOKEN,
    STRANGER_SLACK,
    VICTOR_SLACK,
    Client,
    ResponseUrls,
    form,
    pending,
    press_payload,
    response_urls,
    send,
    signed,
    slack_config,
    slack_people,
)
from tests.support.webhook import wait_done

__all__ = ["response_urls", "slack_config", "slack_people"]  # the fixtures


async def press(client: Client, action: str, value: str, user: str, urls: ResponseUrls, name: str) -> int:
    """A press of a button, signed by Slack now: the HTTP status it was answered with."""
    resp = await send(client, signed(form(press_payload(action, value, user, urls.url(name)))))
    if resp.status == 200:
        assert await resp.read() == b"", "Slack is answered with an empty 200"
    return resp.status


async def row_of(client: Client, action_id: int) -> dict[str, Any]:
    row = await client.app[keys.JOURNAL].get(action_id)
    assert row is not None
    return row.to_json()


async def test_an_approvers_press_decides_under_their_name(
    client_for: ClientFactory, slack_config: Config, response_urls: ResponseUrls, recorder: Recorder
) -> None:
    client = await client_for(slack_config)
    approved, rejected = await pending(client), await pending(client)
    assert await press(client, APPROVE_ACTION, str(approved), ALICE_SLACK, response_urls, "a") == 200
    assert await press(client, REJECT_ACTION, str(rejected), BOB_SLACK, response_urls, "b") == 200
    row = await wait_done(client, approved)
    assert (row["outcome"], row["decided_by"], row["mode"]) == ("succeeded", "alice", "enforce"), row
    assert [run["id"] for run in recorder.runs] == [approved]
    row = await wait_done(client, rejected)
    assert (row["outcome"], row["decided_by"]) == ("rejected", "bob"), row
    replies = {r["path"].split("/")[3]: r["text"] for r in await response_urls.wait_for(2)}
    assert replies == {
        "a": f"You approved decision #{approved}: it runs now.",
        "b": f"You rejected decision #{rejected}.",
    }


@pytest.mark.parametrize(
    ("user", "told"),
    [
        (STRANGER_SLACK, "Your Slack user is not one of pgwarden's approvers, so nothing was done."),
        (VICTOR_SLACK, "You are a viewer of pgwarden: viewers cannot approve or reject."),
    ],
)
async def test_an_unknown_user_or_a_viewer_decides_nothing_and_is_told_why(
    client_for: ClientFactory,
    slack_config: Config,
    response_urls: ResponseUrls,
    recorder: Recorder,
    user: str,
    told: str,
) -> None:
    client = await client_for(slack_config)
    waiting = await pending(client)
    for action in (APPROVE_ACTION, REJECT_ACTION):
        assert await press(client, action, str(waiting), user, response_urls, action) == 200
    replies = await response_urls.wait_for(2)
    assert [r["text"] for r in replies] == [told, told]  # nobody else's name, nothing of the decision
    row = await row_of(client, waiting)
    assert (row["state"], row["outcome"], row["decided_by"]) == ("pending", None, None), row
    assert recorder.runs == []


async def test_a_decision_no_longer_waiting_is_left_as_it_is(
    client_for: ClientFactory, slack_config: Config, response_urls: ResponseUrls, recorder: Recorder
) -> None:
    client = await client_for(slack_config)
    decided, other = await pending(client), await pending(client)
    assert await press(client, REJECT_ACTION, str(decided), BOB_SLACK, response_urls, "first") == 200
    for value, name in ((decided, "again"), (decided + 1000, "missing")):
        assert await press(client, APPROVE_ACTION, str(value), ALICE_SLACK, response_urls, name) == 200
    texts = {r["path"].split("/")[3]: r["text"] for r in await response_urls.wait_for(3)}
    assert texts["again"] == (
        f"Decision #{decided} is no longer waiting for an approval (it is done, rejected): nothing was done."
    )
    assert texts["missing"] == f"pgwarden has no decision #{decided + 1000}: nothing was done."
    row = await row_of(client, decided)
    assert (row["outcome"], row["decided_by"]) == ("rejected", "bob"), row
    assert (await row_of(client, other))["state"] == "pending"  # the press named one decision, not another
    assert recorder.runs == []


@pytest.mark.parametrize("value", ["abc", "12abc", "-1", "0", "1e3", " 1", "\u0661", "9" * 30, "", "1\x00"])
async def test_a_value_that_names_no_decision_decides_nothing(
    client_for: ClientFactory, slack_config: Config, response_urls: ResponseUrls, value: str
) -> None:
    client = await client_for(slack_config)
    waiting = await pending(client)
    assert await press(client, APPROVE_ACTION, value, ALICE_SLACK, response_urls, "x") == 200
    (reply,) = await response_urls.wait_for(1)
    assert reply["text"].startswith("pgwarden has no decision ") and reply["text"].endswith(
        "nothing was done."
    )
    assert (await row_of(client, waiting))["state"] == "pending"


async def test_an_expired_decision_is_not_decided(
    client_for: ClientFactory,
    make_config: ConfigFactory,
    slack_people: dict[str, Any],
    response_urls: ResponseUrls,
) -> None:
    client = await client_for(make_config(**slack_people, approval_timeout=1))
    waiting = await pending(client)
    await asyncio.sleep(1.2)
    assert await press(client, APPROVE_ACTION, str(waiting), ALICE_SLACK, response_urls, "late") == 200
    (reply,) = await response_urls.wait_for(1)
    assert reply["text"] == f"Decision #{waiting} has expired (see the message for why): nothing was done."
    row = await wait_done(client, waiting)
    assert (row["outcome"], row["decided_by"]) == ("expired", None), row


async def test_the_mode_shown_is_the_mode_run(
    client_for: ClientFactory,
    make_config: ConfigFactory,
    slack_people: dict[str, Any],
    response_urls: ResponseUrls,
    recorder: Recorder,
) -> None:
    """A decision journaled (and shown) in dry-run is not run in enforce after a restart: it expires."""
    first = await client_for(make_config(**slack_people, mode="dry-run"))
    waiting = await pending(first)
    assert (await row_of(first, waiting))["mode"] == "dry-run"
    await first.close()
    restarted = await client_for(make_config(**slack_people, mode="enforce"))
    assert await press(restarted, APPROVE_ACTION, str(waiting), ALICE_SLACK, response_urls, "m") == 200
    row = await wait_done(restarted, waiting)
    assert row["outcome"] == "expired" and "mode changed from dry-run to enforce" in row["error"], row
    assert recorder.runs == []
    (reply,) = await response_urls.wait_for(1)
    assert "has expired" in reply["text"]


@pytest.mark.parametrize("journal_kind", ["sqlite", "postgres"])
async def test_slack_and_the_console_racing_exactly_one_wins(
    client_for: ClientFactory,
    make_config: ConfigFactory,
    slack_people: dict[str, Any],
    response_urls: ResponseUrls,
    recorder: Recorder,
    request: pytest.FixtureRequest,
    journal_kind: str,
) -> None:
    """alice approves from Slack while bob rejects in the console, many times: each decision has one answer, and
    the journal's decided_by names whoever won (what each side was told agrees)."""
    overrides = {} if journal_kind == "sqlite" else {"journal": request.getfixturevalue("pg_journal")}
    client = await client_for(make_config(**slack_people, **overrides))
    csrf = await sign_in(client, BOB_TOKEN)
    rounds, winners = 20, Counter[str]()
    slack_told: dict[int, str] = {}

    async def console_reject(decision: int, delay: float) -> ClientResponse:
        await asyncio.sleep(delay)
        return await client.post(f"/ui/actions/{decision}/reject", data={"csrf": csrf}, allow_redirects=False)

    for n in range(rounds):
        waiting = await pending(client)
        slack_url = response_urls.url(str(waiting))
        slack, console = await asyncio.gather(
            send(client, signed(form(press_payload(APPROVE_ACTION, str(waiting), ALICE_SLACK, slack_url)))),
            console_reject(waiting, delay=(n % 5) * 0.004),  # Slack's path is longer: a head start, varied
        )
        assert slack.status == 200 and console.status == 303, n
        console_answer = parse_qs(urlsplit(console.headers["Location"]).query)["answer"][0]
        row = await wait_done(client, waiting)
        winners[row["decided_by"]] += 1
        if row["decided_by"] == "alice":
            assert row["outcome"] == "succeeded" and console_answer == "not_pending", (row, console_answer)
        else:
            assert (row["decided_by"], row["outcome"], console_answer) == ("bob", "rejected", "rejected"), row
    for reply in await response_urls.wait_for(rounds):
        slack_told[int(reply["path"].split("/")[3])] = reply["text"]
    for decision, text in slack_told.items():
        row = await row_of(client, decision)
        won = text.startswith("You approved")
        assert won == (row["decided_by"] == "alice"), (row, text)
    assert sum(winners.values()) == rounds and set(winners) <= {"alice", "bob"}
    assert sorted(run["id"] for run in recorder.runs) == sorted(
        d for d, text in slack_told.items() if text.startswith("You approved")
    )


async def test_the_two_person_rule_holds_from_slack(
    client_for: ClientFactory,
    make_config: ConfigFactory,
    slack_people: dict[str, Any],
    response_urls: ResponseUrls,
    recorder: Recorder,
) -> None:
    two = {
        **slack_people,
        "playbooks": [{**slack_people["playbooks"][0], "require_approval": {"approvals": 2}}],
    }
    client = await client_for(make_config(**two))
    waiting = await pending(client)
    assert await press(client, APPROVE_ACTION, str(waiting), ALICE_SLACK, response_urls, "first") == 200
    assert await press(client, APPROVE_ACTION, str(waiting), ALICE_SLACK, response_urls, "again") == 200
    row = await row_of(client, waiting)
    assert row["state"] == "pending" and [a["by"] for a in row["approvals"]] == ["alice"], row
    assert recorder.runs == []  # one person, however often they press, is one approval
    assert await press(client, APPROVE_ACTION, str(waiting), BOB_SLACK, response_urls, "second") == 200
    row = await wait_done(client, waiting)
    assert (row["outcome"], row["decided_by"]) == ("succeeded", "alice, bob"), row
    assert [run["id"] for run in recorder.runs] == [waiting]
    texts = {r["path"].split("/")[3]: r["text"] for r in await response_urls.wait_for(3)}
    assert texts == {
        "first": f"Your approval of decision #{waiting} counts; it runs once another approver approves.",
        "again": f"You have already approved decision #{waiting}; it needs another approver's approval.",
        "second": f"You approved decision #{waiting}: it runs now.",
    }
