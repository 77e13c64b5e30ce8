"""The two-person rule: `require_approval: {approvals: 2}` runs a decision only once two different approvers
approved it; the same approver twice counts once, one rejection rejects, the first approval is journaled and
shown (console, /actions); two approvers at once on two replicas approve it exactly once. Validated at load."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from responder.config import ConfigError, summary
from tests.responder.approvals.people import (
    ALICE,
    BOB,
    CAROL,
    TWO,
    Client,
    bearer,
    link,
    people,
    press,
    two,
)
from tests.responder.ui.console import sign_in
from tests.support.responder import ClientFactory, ConfigFactory, Recorder
from tests.support.webhook import wait_done


def test_validated_at_load_with_the_key_path(
    make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    few = people(monkeypatch, tmp_path, carol=False)  # alice and bob
    config = make_config(**few)
    assert [(p.name, p.require_approval, p.approvals) for p in config.playbooks] == [
        ("held", True, 1), ("two", True, 2)
    ]  # fmt: skip
    assert "require_approval=2" in summary(config)
    unset = make_config(**{**few, "playbooks": [{**TWO, "require_approval": False}]})
    assert (unset.playbooks[0].require_approval, unset.playbooks[0].approvals) == (False, 1)
    with pytest.raises(ConfigError) as too_many:
        make_config(**{**few, "playbooks": [{**TWO, "require_approval": {"approvals": 3}}]})
    assert "playbooks.0.require_approval.approvals" in str(too_many.value)
    assert "3 approvals needed but 2 approver(s) configured" in str(too_many.value)
    with pytest.raises(ConfigError) as zero:
        make_config(**{**few, "playbooks": [{**TWO, "require_approval": {"approvals": 0}}]})
    assert "playbooks.0.require_approval" in str(zero.value)
    with pytest.raises(ConfigError) as unknown:
        make_config(**{**few, "playbooks": [{**TWO, "require_approval": {"approvers": 2}}]})
    assert "playbooks.0.require_approval" in str(unknown.value)
    schedule = {
        "name": "nightly", "cron": "0 3 * * *", "action": "record", "target": {"target": "production"},
        "require_approval": {"approvals": 5},
    }  # fmt: skip
    with pytest.raises(ConfigError) as scheduled:
        make_config(**{**few, "schedules": [schedule]})
    assert "schedules.0.require_approval.approvals" in str(scheduled.value)
    ok = make_config(**{**few, "schedules": [{**schedule, "require_approval": {"approvals": 2}}]})
    assert ok.schedules[0].playbook.approvals == 2


async def test_two_different_approvers_are_needed_and_the_first_approval_is_shown(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    journal_url: str,
) -> None:
    client = await client_for(make_config(journal=journal_url, **people(monkeypatch, tmp_path)))
    action_id = await two(client)
    resp = await client.post(f"/actions/{action_id}/approve", headers=bearer(ALICE))
    assert resp.status == 202 and (await resp.json())["result"] == "approval_recorded"
    row = await wait_done(client, action_id)
    assert row["state"] == "pending" and row["decided_by"] is None and recorder.runs == []
    ((first,),) = [row["approvals"]]
    assert first["by"] == "alice" and first["at"].endswith("Z")
    # the same approver again counts once
    resp = await client.post(f"/actions/{action_id}/approve", headers=bearer(ALICE))
    assert resp.status == 409 and (await resp.json())["result"] == "already_approved"
    assert (await wait_done(client, action_id))["state"] == "pending" and recorder.runs == []
    # the console shows who approved first, and that another approver is awaited
    await sign_in(client, CAROL)
    page = await (await client.get("/ui/approvals")).text()
    assert 'class="approver">alice<' in page and "waiting for another approver" in page
    # a second, different approver approves: it runs, once
    resp = await client.post(f"/actions/{action_id}/approve", headers=bearer(BOB))
    assert resp.status == 202 and (await resp.json())["result"] == "approved"
    row = await wait_done(client, action_id)
    assert (row["outcome"], row["decided_by"]) == ("succeeded", "alice, bob")
    assert [a["by"] for a in row["approvals"]] == ["alice", "bob"]
    assert len(recorder.runs) == 1
    resp = await client.post(f"/actions/{action_id}/approve", headers=bearer(CAROL))
    assert resp.status == 409 and (await resp.json())["result"] == "not_pending"
    assert len(recorder.runs) == 1


async def test_one_rejection_rejects(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    client = await client_for(make_config(**people(monkeypatch, tmp_path)))
    action_id = await two(client)
    assert (await press(client, link(client, "alice", action_id), "approve"))[0] == 200
    status, page = await press(client, link(client, "bob", action_id), "reject")
    assert status == 200 and "Rejected" in page
    row = await wait_done(client, action_id)
    assert (row["outcome"], row["decided_by"]) == ("rejected", "bob")
    assert [a["by"] for a in row["approvals"]] == ["alice"]  # the approval stays on the record
    resp = await client.post(f"/actions/{action_id}/approve", headers=bearer(CAROL))
    assert resp.status == 409 and recorder.runs == []


async def test_two_approvers_at_once_on_two_replicas_approve_exactly_once(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_journal: str,
) -> None:
    config = make_config(journal=pg_journal, **people(monkeypatch, tmp_path))
    first, second = await client_for(config), await client_for(config)
    ids = [await two(first) for _ in range(8)]

    async def approve(client: Client, token: str, action_id: int) -> Any:
        resp = await client.post(f"/actions/{action_id}/approve", headers=bearer(token))
        return (await resp.json())["result"]

    for action_id in ids:
        answers = await asyncio.gather(
            approve(first, ALICE, action_id),
            approve(second, BOB, action_id),
            approve(second, ALICE, action_id),
        )
        assert sorted(answers).count("approved") == 1, answers
        assert set(answers) <= {"approved", "approval_recorded", "already_approved", "not_pending"}
    for action_id in ids:
        row = await wait_done(first, action_id)
        assert row["outcome"] == "succeeded" and sorted(a["by"] for a in row["approvals"]) == ["alice", "bob"]
    assert sorted(r["id"] for r in recorder.runs) == sorted(ids)  # each ran once
