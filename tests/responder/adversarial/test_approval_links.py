"""Approval links under attack: forged, altered, expired, reused or replayed links, a viewer's or a removed
approver's, missing or wrong CSRF, GETs (previewers), the same approver twice under the two-person rule, a link
pointed at another decision, and a link racing the console: nothing is decided but by the one valid press,
and no hostile token is ever a 500."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from itsdangerous import URLSafeTimedSerializer

from responder.approvals.links import SALT, sign_link
from responder.ui.confirm import CONFIRM_COOKIE, link_csrf
from tests.responder.approvals.people import (
    BOB,
    Client,
    form_csrf,
    link,
    open_link,
    people,
    person,
    press,
)
from tests.responder.ui.console import sign_in
from tests.support.responder import TOKEN, ClientFactory, ConfigFactory, Recorder
from tests.support.webhook import alert, post_alerts, wait_done


async def pending(client: Client, alertname: str = "Held") -> int:
    (d,) = await post_alerts(client, alert(alertname, target="production", datname="app"))
    return int(d["id"])


def hostile(client: Client, action_id: int, kind: str) -> str:
    """A link token that must decide nothing."""
    alice, bob = person(client, "alice"), person(client, "bob")
    token = sign_link(alice, action_id)
    rest = token.partition(".")[2]
    as_viewer = URLSafeTimedSerializer("victor-viewer-token-0123", salt=SALT)
    forged_key = URLSafeTimedSerializer(TOKEN, salt=SALT)  # the webhook's token is nobody's key
    tokens = {
        "bob's claim, alice's signature": sign_link(bob, action_id).partition(".")[0] + "." + rest,
        "another decision's claim": sign_link(alice, action_id + 1).partition(".")[0] + "." + rest,
        "truncated": token[:-4],
        "garbage": "not-a-link",
        "dots": "...",
        "traversal": "..%2F..%2Fetc%2Fpasswd",
        "huge": "A" * 5000,
        "not ascii": "é" * 40,
        "nul": "abc%00def",
        "a viewer's": str(as_viewer.dumps({"a": action_id, "u": "victor", "n": "x" * 22})),
        "signed with the webhook token": str(forged_key.dumps({"a": action_id, "u": "alice", "n": "y" * 22})),
        "no nonce": str(URLSafeTimedSerializer(alice.token, salt=SALT).dumps({"a": action_id, "u": "alice"})),
        "id not a number": str(URLSafeTimedSerializer(alice.token, salt=SALT).dumps(
            {"a": str(action_id), "u": "alice", "n": "z" * 22}
        )),
    }  # fmt: skip
    return tokens[kind]


KINDS = [
    "bob's claim, alice's signature",
    "another decision's claim",
    "truncated",
    "garbage",
    "dots",
    "traversal",
    "huge",
    "not ascii",
    "nul",
    "a viewer's",
    "signed with the webhook token",
    "no nonce",
    "id not a number",
]


async def test_hostile_tokens_are_404_or_400_and_decide_nothing(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    client = await client_for(make_config(**people(monkeypatch, tmp_path)))
    action_id = await pending(client)
    for kind in KINDS:
        path = "/ui/confirm/" + hostile(client, action_id, kind)
        get = await client.get(path)
        post = await client.post(path, data={"csrf": "x", "decision": "approve"})
        for resp in (get, post):
            assert resp.status in (400, 404), (kind, resp.status)
            assert "Approve</button>" not in await resp.text()
    row = await wait_done(client, action_id)
    assert (row["state"], row["approvals"]) == ("pending", []) and recorder.runs == []


async def test_a_removed_approvers_link_decides_nothing(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    before = people(monkeypatch, tmp_path)
    old = await client_for(make_config(**before))
    action_id = await pending(old)
    bobs = link(old, "bob", action_id)
    await old.close()
    after = {**before, "approvers": [a for a in before["approvers"] if a["name"] != "bob"]}
    client = await client_for(make_config(**after))  # bob is no longer an approver
    assert (await open_link(client, bobs))[0] == 404
    assert (await client.post(bobs, data={"csrf": "x", "decision": "approve"})).status == 404
    demoted = {**before, "viewers": [*before["viewers"], {"name": "bob", "token_env": "PGW_TEST_BOB_TOKEN"}]}
    demoted["approvers"] = after["approvers"]
    viewer = await client_for(make_config(**demoted))  # bob, same token, now a viewer
    assert (await open_link(viewer, bobs))[0] == 404
    assert (await wait_done(viewer, action_id))["state"] == "pending" and recorder.runs == []


@pytest.mark.parametrize("csrf", ["missing", "wrong", "no cookie", "another link's"])
async def test_a_post_without_the_links_csrf_token_decides_nothing(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    csrf: str,
) -> None:
    client = await client_for(make_config(**people(monkeypatch, tmp_path)))
    action_id = await pending(client)
    path, other = link(client, "alice", action_id), link(client, "alice", action_id)
    _, page = await open_link(client, path)
    token = form_csrf(page)
    assert token is not None
    _, other_page = await open_link(client, other)
    data = {
        "missing": {"decision": "approve"},
        "wrong": {"csrf": "0" * 64, "decision": "approve"},
        "no cookie": {"csrf": token, "decision": "approve"},
        "another link's": {"csrf": form_csrf(other_page) or "", "decision": "approve"},
    }[csrf]
    if csrf == "no cookie":
        client.session.cookie_jar.clear()
    resp = await client.post(path, data=data)
    assert resp.status == 403 and "CSRF" in await resp.text()
    assert (await wait_done(client, action_id))["state"] == "pending" and recorder.runs == []
    # the link was not spent by the refused post: pressing it properly still decides
    assert (await press(client, path, "approve"))[0] == 200
    assert (await wait_done(client, action_id))["outcome"] == "succeeded"


async def test_gets_and_heads_never_decide(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    client = await client_for(make_config(**people(monkeypatch, tmp_path)))
    action_id = await pending(client)
    path = link(client, "alice", action_id)
    for query in ("", "?decision=approve", "?decision=reject&csrf=x"):
        assert (await client.get(path + query)).status == 200
        assert (await client.head(path + query)).status == 200
    row = await wait_done(client, action_id)
    assert (row["state"], row["approvals"]) == ("pending", []) and recorder.runs == []


async def test_a_link_decides_only_its_own_decision(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    client = await client_for(make_config(**people(monkeypatch, tmp_path)))
    first, second = await pending(client), await pending(client)
    path = link(client, "alice", first)
    _, page = await open_link(client, path)
    resp = await client.post(path, data={"csrf": form_csrf(page) or "", "decision": "reject", "id": second})
    assert resp.status == 200
    assert (await wait_done(client, first))["outcome"] == "rejected"
    assert (await wait_done(client, second))["state"] == "pending"
    assert (await open_link(client, link(client, "alice", 999_999)))[0] == 404  # no such decision
    assert recorder.runs == []


async def test_the_same_approver_twice_counts_once_and_a_spent_link_replayed_on_another_replica_decides_nothing(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_journal: str,
) -> None:
    config = make_config(journal=pg_journal, **people(monkeypatch, tmp_path))
    a, b = await client_for(config), await client_for(config)
    action_id = await pending(a, "Two")
    path = link(a, "alice", action_id)
    _, page = await open_link(a, path)
    csrf = form_csrf(page) or ""
    resp = await a.post(path, data={"csrf": csrf, "decision": "approve"})
    assert resp.status == 200 and "another approver" in await resp.text()
    # the same press replayed on the other replica: the nonce is spent in the journal
    b.session.cookie_jar.update_cookies({CONFIRM_COOKIE: csrf})
    resp = await b.post(path, data={"csrf": csrf, "decision": "approve"})
    assert resp.status == 409 and "used already" in await resp.text()
    # a second, fresh link of alice's: she has approved already, it counts once
    again = link(b, "alice", action_id)
    status, page = await open_link(b, again)
    assert status == 200 and "approved this already" in page and "Approve</button>" not in page
    fresh = link_csrf(person(b, "alice"), again.rsplit("/", 1)[1])
    b.session.cookie_jar.update_cookies({CONFIRM_COOKIE: fresh})
    resp = await b.post(again, data={"csrf": fresh, "decision": "approve"})
    assert resp.status == 409 and "approved this already" in await resp.text()
    row = await wait_done(a, action_id)
    assert row["state"] == "pending" and [x["by"] for x in row["approvals"]] == ["alice"]
    assert recorder.runs == []
    assert (await press(b, link(b, "bob", action_id), "approve"))[0] == 200
    assert (await wait_done(a, action_id))["outcome"] == "succeeded" and len(recorder.runs) == 1


async def test_approve_from_a_link_and_reject_from_the_console_racing_exactly_one_wins(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    journal_url: str,
) -> None:
    config = make_config(journal=journal_url, **people(monkeypatch, tmp_path))
    client = await client_for(config)
    console = await client_for(config)
    csrf = await sign_in(console, BOB)
    ids = [await pending(client) for _ in range(6)]
    link_wins = 0
    for action_id in ids:
        path = link(client, "alice", action_id)
        _, page = await open_link(client, path)
        by_link = client.post(path, data={"csrf": form_csrf(page) or "", "decision": "approve"})
        by_console = console.post(f"/ui/actions/{action_id}/reject", data={"csrf": csrf})
        link_resp, console_resp = await asyncio.gather(by_link, by_console)
        row = await wait_done(client, action_id)
        link_won = link_resp.status == 200
        console_won = f"answer={'rejected'}" in str(console_resp.url)
        assert link_won != console_won, (link_resp.status, console_resp.url, row)
        assert row["outcome"] == ("succeeded" if link_won else "rejected")
        assert row["decided_by"] == ("alice" if link_won else "bob")
        link_wins += link_won
    assert len(recorder.runs) == link_wins  # only what the link approved ran, once each


async def test_a_links_token_is_never_logged(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await client_for(make_config(**people(monkeypatch, tmp_path)))
    action_id = await pending(client)
    path = link(client, "alice", action_id)
    with caplog.at_level(logging.DEBUG, logger="responder"):
        assert (await press(client, path, "approve"))[0] == 200
        await wait_done(client, action_id)
    ours = [r for r in caplog.records if r.name.startswith("responder")]
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in ours)
    token = path.rsplit("/", 1)[1]
    assert any(r.getMessage() == "approval" and getattr(r, "via", None) == "link" for r in ours)
    assert token not in logged and token.split(".")[-1] not in logged
    assert person(client, "alice").token not in logged
