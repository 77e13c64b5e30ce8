"""The confirmation page of an approval link: GET shows the decision and two buttons to the approver the link
names, POST decides under that approver's name once, on either journal; a link for a decision no longer
pending says what became of it; a link expires (never later than the approval window)."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
import time_machine

from responder.approvals.links import LINK_TTL
from responder.ui.confirm import CONFIRM_COOKIE, link_csrf
from tests.responder.approvals.people import (
    ALICE,
    BOB,
    Client,
    form_csrf,
    link,
    open_link,
    people,
    person,
    press,
)
from tests.support.journal import journal_sql
from tests.support.responder import ClientFactory, ConfigFactory, Recorder
from tests.support.webhook import alert, post_alerts, wait_done


async def held(make_config: ConfigFactory, client_for: ClientFactory, **extra: object) -> tuple[Client, int]:
    client = await client_for(make_config(**extra))
    (d,) = await post_alerts(client, alert("Held", target="production", datname="app"))
    return client, int(d["id"])


async def test_the_page_shows_the_decision_and_its_buttons_and_a_post_decides_once(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    journal_url: str,
) -> None:
    client, action_id = await held(
        make_config, client_for, journal=journal_url, **people(monkeypatch, tmp_path)
    )
    path = link(client, "alice", action_id)
    status, page = await open_link(client, path)
    assert status == 200
    assert 'id="approver">alice<' in page and "Approve</button>" in page and "Reject</button>" in page
    assert "Held" in page and "held" in page and "production" in page  # why, what, where
    assert 'id="mode" class="mode-enforce"' in page and 'id="state">pending<' in page
    assert ALICE not in page and BOB not in page  # no token is ever shown
    for _ in range(3):  # GETs never decide (previewers and unfurlers fetch them)
        assert (await open_link(client, path))[0] == 200
    assert (await wait_done(client, action_id))["state"] == "pending" and recorder.runs == []
    assert journal_sql(journal_url, "SELECT count(*) FROM pgwarden_link_nonces")[0][0] == 0

    csrf = form_csrf(page)
    assert csrf is not None
    resp = await client.post(path, data={"csrf": csrf, "decision": "approve"})
    assert resp.status == 200 and "Approved: the action runs now." in await resp.text()
    row = await wait_done(client, action_id)
    assert (row["outcome"], row["decided_by"]) == ("succeeded", "alice")
    assert [a["by"] for a in row["approvals"]] == ["alice"] and len(recorder.runs) == 1

    # used: the same post again decides nothing and says so; the page now says what became of the decision
    client.session.cookie_jar.update_cookies({CONFIRM_COOKIE: csrf})  # the form's cookie, as before the post
    resp = await client.post(path, data={"csrf": csrf, "decision": "reject"})
    assert resp.status == 409 and "used already" in html.unescape(await resp.text())
    status, page = await open_link(client, path)
    assert status == 200 and "used already" in page and "Approve</button>" not in page
    assert 'id="state">done: succeeded<' in page and 'id="decided-by">alice<' in page
    assert len(recorder.runs) == 1


async def test_reject_from_a_link(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    client, action_id = await held(make_config, client_for, **people(monkeypatch, tmp_path))
    status, page = await press(client, link(client, "bob", action_id), "reject")
    assert status == 200 and "Rejected" in page
    row = await wait_done(client, action_id)
    assert (row["outcome"], row["decided_by"], row["approvals"]) == ("rejected", "bob", [])
    assert recorder.runs == []


async def test_a_link_for_a_decision_no_longer_pending_says_what_became_of_it(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    client, action_id = await held(make_config, client_for, **people(monkeypatch, tmp_path))
    alices, bobs = link(client, "alice", action_id), link(client, "bob", action_id)
    _, page = await open_link(client, bobs)  # bob opens his link, then alice rejects from hers
    assert (await press(client, alices, "reject"))[0] == 200
    status, page = await open_link(client, bobs)
    assert status == 200 and "no longer waiting" in page and "Approve</button>" not in page
    assert 'id="state">done: rejected<' in page and 'id="decided-by">alice<' in page
    # a post from the page bob had open decides nothing either
    assert form_csrf((await open_link(client, bobs))[1]) is None
    status, page = await press_stale(client, bobs)
    assert status == 409 and "no longer waiting" in page
    assert (await wait_done(client, action_id))["outcome"] == "rejected" and recorder.runs == []


async def press_stale(client: Client, path: str) -> tuple[int, str]:
    """A post with the CSRF token of the page as it was while the decision was pending."""
    csrf = link_csrf(person(client, "bob"), path.rsplit("/", 1)[1])
    client.session.cookie_jar.update_cookies({CONFIRM_COOKIE: csrf})
    resp = await client.post(path, data={"csrf": csrf, "decision": "approve"})
    return resp.status, html.unescape(await resp.text())


async def test_a_link_expires_and_never_outlives_the_approval_window(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    client, action_id = await held(make_config, client_for, **people(monkeypatch, tmp_path))
    with time_machine.travel(1_900_000_000, tick=False):
        path = link(client, "alice", action_id)
    with time_machine.travel(1_900_000_000 + LINK_TTL + 5, tick=False):
        status, page = await open_link(client, path)
    assert status == 410 and "expired" in page and "Approve</button>" not in page

    short, short_id = await held(
        make_config, client_for, approval_timeout="10m", **people(monkeypatch, tmp_path)
    )
    with time_machine.travel(1_900_000_000, tick=False):
        path = link(short, "alice", short_id)
    with time_machine.travel(1_900_000_000 + 600 + 5, tick=False):  # within LINK_TTL, past the window
        status, page = await open_link(short, path)
        assert status == 410 and "expired" in page
        resp = await short.post(path, data={"csrf": "x", "decision": "approve"})
        assert resp.status == 410
    assert recorder.runs == []
