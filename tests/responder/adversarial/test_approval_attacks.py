"""Issue 23's approval paths under attack (the review of links, Slack and the two-person rule): the same person
through two paths, an approval by someone no longer an approver, the window closing between two approvals, the
rule or the mode changed between the link and the press, Slack user ids that only look like an approver's,
several actions in one press, a signing secret since removed, and two approvers at once on one SQLite file.
Each test fails while its defect is present; none of them lets an action run that should not, or twice."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import time_machine

from responder import keys
from responder.approvals.slack import APPROVE_ACTION, REJECT_ACTION
from responder.config import Config
from responder.ui.confirm import CONFIRM_COOKIE, link_csrf
from tests.responder.approvals.people import (
    ALICE,
    BOB,
    CAROL,
    Client,
    bearer,
    form_csrf,
    link,
    open_link,
    people,
    person,
    press,
    two,
)
from tests.support.responder import ClientFactory, ConfigFactory, Recorder, record_playbook
from tests.support.slack_requests import (
    ALICE_SLACK,
    OTHER_SECRET,
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
from tests.support.webhook import alert, post_alerts, wait_done

__all__ = ["response_urls", "slack_config", "slack_people"]  # the fixtures


async def approve(client: Client, token: str, action_id: int) -> tuple[int, str]:
    resp = await client.post(f"/actions/{action_id}/approve", headers=bearer(token))
    return resp.status, str((await resp.json())["result"])


# ---- the two-person rule ------------------------------------------------------------------------------------


async def test_the_same_person_from_slack_and_from_a_link_counts_once(
    client_for: ClientFactory,
    make_config: ConfigFactory,
    slack_people: dict[str, Any],
    response_urls: ResponseUrls,
    recorder: Recorder,
) -> None:
    config = make_config(
        **{**slack_people, "playbooks": [record_playbook(require_approval={"approvals": 2})]}
    )
    client = await client_for(config)
    waiting = await pending(client)
    body = form(press_payload(APPROVE_ACTION, str(waiting), ALICE_SLACK, response_urls.url("a")))
    assert (await send(client, signed(body))).status == 200
    await response_urls.wait_for(1)
    alices = link(client, "alice", waiting)
    status, page = await open_link(client, alices)
    assert status == 200 and "approved this already" in page and "Approve</button>" not in page
    csrf = link_csrf(person(client, "alice"), alices.rsplit("/", 1)[1])  # as if the page had its form
    client.session.cookie_jar.update_cookies({CONFIRM_COOKIE: csrf})
    resp = await client.post(alices, data={"csrf": csrf, "decision": "approve"})
    assert resp.status == 409 and "approved this already" in await resp.text()
    assert await approve(client, ALICE, waiting) == (409, "already_approved")
    row = await wait_done(client, waiting)
    assert row["state"] == "pending" and [a["by"] for a in row["approvals"]] == ["alice"]
    assert recorder.runs == []
    status, _ = await press(client, link(client, "bob", waiting), "approve")
    assert status == 200
    row = await wait_done(client, waiting)
    assert (row["outcome"], row["decided_by"]) == ("succeeded", "alice, bob") and len(recorder.runs) == 1


@pytest.mark.parametrize("alice_now", ["a viewer", "removed"])
async def test_an_approval_by_someone_no_longer_an_approver_does_not_count(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    alice_now: str,
) -> None:
    """Alice approves, then is demoted (or removed: her token leaked, she left): the two-person rule needs two
    people who are approvers when it runs, so bob's approval alone does not run it; carol's then does."""
    before = people(monkeypatch, tmp_path)
    old = await client_for(make_config(**before))
    action_id = await two(old)
    assert await approve(old, ALICE, action_id) == (202, "approval_recorded")
    await old.close()
    after = {**before, "approvers": [a for a in before["approvers"] if a["name"] != "alice"]}
    if alice_now == "a viewer":
        after["viewers"] = [*before["viewers"], {"name": "alice", "token_env": "PGW_TEST_ALICE_TOKEN"}]
    client = await client_for(make_config(**after))
    assert await approve(client, BOB, action_id) == (202, "approval_recorded")
    row = await wait_done(client, action_id)
    assert row["state"] == "pending" and recorder.runs == [], row
    assert await approve(client, CAROL, action_id) == (202, "approved")
    row = await wait_done(client, action_id)
    assert (row["outcome"], row["decided_by"]) == ("succeeded", "bob, carol"), row
    assert len(recorder.runs) == 1


async def test_the_approval_window_closing_between_the_two_approvals(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    client = await client_for(make_config(approval_timeout="10m", **people(monkeypatch, tmp_path)))
    with time_machine.travel(1_900_000_000, tick=False):
        action_id = await two(client)
        assert (await press(client, link(client, "alice", action_id), "approve"))[0] == 200
    with time_machine.travel(1_900_000_000 + 600 + 5, tick=False):  # past the window: a fresh link of bob's
        bobs = link(client, "bob", action_id)
        status = (await client.get(bobs)).status
        assert status == 200  # shown, as it is now
        assert await approve(client, BOB, action_id) == (410, "expired")
        assert await approve(client, CAROL, action_id) in (
            (409, "expired"),
            (410, "expired"),
            (409, "not_pending"),
        )
        row = await wait_done(client, action_id)
    assert (row["outcome"], row["decided_by"]) == ("expired", None) and recorder.runs == []


async def test_a_rule_made_stricter_after_the_link_was_sent_holds(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A link sent while the playbook needed one approval, pressed after it was made to need two: it counts as
    one of two. Then the mode changes before the second approval: nothing runs in a mode nobody approved."""
    before = people(monkeypatch, tmp_path)
    old = await client_for(make_config(**before))
    (d,) = await post_alerts(old, alert("Held", target="production", datname="app"))
    action_id = int(d["id"])
    alices = link(old, "alice", action_id)
    await old.close()
    stricter = [{**p, "require_approval": {"approvals": 2}} for p in before["playbooks"]]
    client = await client_for(make_config(**{**before, "playbooks": stricter}))
    status, page = await press(client, alices, "approve")
    assert status == 200 and "another approver" in page
    assert (await wait_done(client, action_id))["state"] == "pending" and recorder.runs == []
    await client.close()
    dry = [{**p, "mode": "dry-run"} for p in stricter]
    changed = await client_for(make_config(**{**before, "playbooks": dry}))
    assert await approve(changed, BOB, action_id) == (410, "expired")
    row = await wait_done(changed, action_id)
    assert row["outcome"] == "expired" and "mode changed" in row["error"] and recorder.runs == []


async def test_two_approvers_at_once_on_two_responders_sharing_one_sqlite_file(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Two responders on one SQLite file (each its own connections and writer thread, as two processes have):
    the last approval is counted and the decision queued exactly once, and each decision runs once."""
    config = make_config(**people(monkeypatch, tmp_path))
    first, second = await client_for(config), await client_for(config)
    ids = [await two(first) for _ in range(8)]
    for action_id in ids:
        answers = await asyncio.gather(
            approve(first, ALICE, action_id),
            approve(second, BOB, action_id),
            approve(second, CAROL, action_id),
        )
        results = [result for _, result in answers]
        assert results.count("approved") == 1, answers
        assert set(results) <= {"approved", "approval_recorded", "not_pending"}, answers
    for action_id in ids:
        assert (await wait_done(first, action_id))["outcome"] == "succeeded"
    assert sorted(r["id"] for r in recorder.runs) == sorted(ids)


# ---- Slack --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user_id",
    [
        ALICE_SLACK.lower(),  # a case variant
        ALICE_SLACK.replace("A", "\u0410", 1),  # Cyrillic A
        "\uff35" + ALICE_SLACK[1:],  # fullwidth U
        ALICE_SLACK + "\n",
        ALICE_SLACK + " ",
        " " + ALICE_SLACK,
        ALICE_SLACK + "\u200b",  # zero-width space
    ],
)
async def test_a_slack_user_id_that_only_looks_like_an_approvers_decides_nothing(
    client_for: ClientFactory,
    slack_config: Config,
    response_urls: ResponseUrls,
    recorder: Recorder,
    user_id: str,
) -> None:
    client = await client_for(slack_config)
    waiting = await pending(client)
    resp = await send(
        client, signed(form(press_payload(APPROVE_ACTION, str(waiting), user_id, response_urls.url())))
    )
    assert resp.status in (200, 400), resp.status
    row = await wait_done(client, waiting)
    assert (row["state"], row["approvals"]) == ("pending", []) and recorder.runs == []
    for reply in await response_urls.settle(0.2):
        assert "not one of pgwarden's approvers" in reply["text"]


async def test_several_actions_in_one_press_decide_one_decision_at_most(
    client_for: ClientFactory, slack_config: Config, response_urls: ResponseUrls, recorder: Recorder
) -> None:
    client = await client_for(slack_config)
    first, second = await pending(client), await pending(client)
    payload = press_payload(APPROVE_ACTION, str(first), ALICE_SLACK, response_urls.url())
    action = payload["actions"][0]
    payload["actions"] = [action, {**action, "value": str(second)}, {**action, "value": str(second)}]
    assert (await send(client, signed(form(payload)))).status == 200
    assert (await wait_done(client, first))["outcome"] == "succeeded"
    assert (await wait_done(client, second))["state"] == "pending"
    assert [r["id"] for r in recorder.runs] == [first]


async def test_a_press_signed_with_the_secret_of_a_receiver_since_removed_decides_nothing(
    client_for: ClientFactory,
    make_config: ConfigFactory,
    slack_people: dict[str, Any],
    response_urls: ResponseUrls,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGW_TEST_SLACK_OTHER", OTHER_SECRET)
    receivers = slack_people["notify"]["receivers"]
    other = {
        "name": "other-slack",
        "slack": {**receivers[0]["slack"], "signing_secret_env": "PGW_TEST_SLACK_OTHER"},
    }
    with_both = make_config(**{**slack_people, "notify": {"receivers": [*receivers, other]}})
    old = await client_for(with_both)
    waiting = await pending(old)
    body = form(press_payload(APPROVE_ACTION, str(waiting), ALICE_SLACK, response_urls.url("old")))
    assert (await send(old, signed(body, OTHER_SECRET))).status == 200  # taken while configured
    assert (await wait_done(old, waiting))["outcome"] == "succeeded"
    await old.close()
    client = await client_for(make_config(**slack_people))  # the other receiver removed
    again = await pending(client)
    body = form(press_payload(APPROVE_ACTION, str(again), ALICE_SLACK, response_urls.url("new")))
    resp = await send(client, signed(body, OTHER_SECRET))
    assert resp.status == 401 and "signature" in json.dumps(await resp.json())
    assert (await wait_done(client, again))["state"] == "pending"
    assert [r["id"] for r in recorder.runs] == [waiting]


async def test_an_old_buttons_decision_id_never_names_a_new_decision_after_retention(
    client_for: ClientFactory, slack_config: Config, response_urls: ResponseUrls, recorder: Recorder
) -> None:
    """A Slack message's buttons carry a decision id and outlive it: once retention has deleted that decision,
    the next one must not get its id (SQLite would hand the largest id out again without AUTOINCREMENT), or an
    approver pressing the old message's Approve would approve whatever came next."""
    client = await client_for(slack_config)
    with time_machine.travel(time.time() - 91 * 86400, tick=False):  # long before retention's 90 days
        old = await pending(client)
        body = form(press_payload(REJECT_ACTION, str(old), ALICE_SLACK, response_urls.url("old")))
        assert (await send(client, signed(body))).status == 200
        assert (await wait_done(client, old))["outcome"] == "rejected"
    journal = client.app[keys.JOURNAL]
    await journal.prune(slack_config.schema.journal_retention)
    assert await journal.get(old) is None
    new = await pending(client)
    assert new != old
    body = form(press_payload(APPROVE_ACTION, str(old), ALICE_SLACK, response_urls.url("again")))
    assert (await send(client, signed(body))).status == 200
    assert (await wait_done(client, new))["state"] == "pending" and recorder.runs == []


async def test_a_link_signed_before_a_rotation_holds_only_where_the_old_token_is_still_configured(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_journal: str,
) -> None:
    """Alice's token rotated on replica b, not yet on a: b refuses her old links (and a her new ones); a link
    taken on a is spent for both, so it decides once."""
    before = people(monkeypatch, tmp_path)
    a = await client_for(make_config(journal=pg_journal, **before))
    monkeypatch.setenv("PGW_TEST_ALICE_TOKEN", "alice-rotated-token-98765")
    b = await client_for(make_config(journal=pg_journal, **before))
    action_id = await two(a)
    old_link, new_link = link(a, "alice", action_id), link(b, "alice", action_id)
    for client, path in ((b, old_link), (a, new_link)):
        assert (await open_link(client, path))[0] == 404
        assert (await client.post(path, data={"csrf": "x", "decision": "reject"})).status == 404
    assert (await wait_done(a, action_id))["approvals"] == []
    _, page = await open_link(a, old_link)
    csrf = form_csrf(page) or ""
    assert (await a.post(old_link, data={"csrf": csrf, "decision": "approve"})).status == 200
    a.session.cookie_jar.update_cookies({CONFIRM_COOKIE: csrf})
    assert (await a.post(old_link, data={"csrf": csrf, "decision": "approve"})).status == 409
    status, page = await open_link(b, new_link)  # alice, under her new token: counted once already
    assert status == 200 and "approved this already" in page
    assert (await press(b, link(b, "bob", action_id), "approve"))[0] == 200
    row = await wait_done(a, action_id)
    assert (row["outcome"], row["decided_by"]) == ("succeeded", "alice, bob") and len(recorder.runs) == 1


async def test_one_person_renamed_in_the_config_counts_once(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Alice approves, then her entry is renamed (same token, same person): approving again under the new name
    must not make her the second of the two approvers."""
    before = people(monkeypatch, tmp_path)
    old = await client_for(make_config(**before))
    action_id = await two(old)
    assert await approve(old, ALICE, action_id) == (202, "approval_recorded")
    await old.close()
    renamed = [{**a, "name": "alice.smith"} if a["name"] == "alice" else a for a in before["approvers"]]
    client = await client_for(make_config(**{**before, "approvers": renamed}))
    assert await approve(client, ALICE, action_id) == (202, "approval_recorded")
    assert (await wait_done(client, action_id))["state"] == "pending" and recorder.runs == []
    assert await approve(client, BOB, action_id) == (202, "approved")
    row = await wait_done(client, action_id)
    assert (row["outcome"], row["decided_by"]) == ("succeeded", "alice.smith, bob") and len(
        recorder.runs
    ) == 1


async def test_one_link_pressed_at_once_on_two_replicas_counts_once(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    journal_url: str,
) -> None:
    config = make_config(journal=journal_url, **people(monkeypatch, tmp_path))
    a, b = await client_for(config), await client_for(config)
    for _ in range(4):
        action_id = await two(a)
        path = link(a, "alice", action_id)
        _, page = await open_link(a, path)
        csrf = form_csrf(page) or ""
        b.session.cookie_jar.update_cookies({CONFIRM_COOKIE: csrf})
        presses = [c.post(path, data={"csrf": csrf, "decision": "approve"}) for c in (a, b, a, b)]
        statuses = sorted(r.status for r in await asyncio.gather(*presses))
        assert statuses == [200, 409, 409, 409], statuses
        row = await wait_done(a, action_id)
        assert row["state"] == "pending" and [x["by"] for x in row["approvals"]] == ["alice"]
    assert recorder.runs == []
