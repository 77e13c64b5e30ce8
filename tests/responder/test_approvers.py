"""Approvals separate duties: only an approver's own token approves or rejects, the journal records that
approver's name, the webhook's token never decides, and viewers only read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from responder.config import ConfigError, summary
from tests.responder.ui.console import ALICE, VICTOR
from tests.responder.ui.console import people as console_people
from tests.support.responder import AUTH, TOKEN, ClientFactory, ConfigFactory, Recorder
from tests.support.webhook import alert, post_alerts, wait_done

HELD = {"name": "rec", "match": {"alertname": "TestAlert"}, "action": "record", "require_approval": True}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def people(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    return {**console_people(monkeypatch, tmp_path), "playbooks": [HELD]}


async def test_only_an_approvers_token_decides_and_the_journal_names_the_approver(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder, people: dict[str, Any]
) -> None:
    client = await client_for(make_config(**people))
    first, second = await post_alerts(client, alert(), alert())
    # the webhook's token (what every Alertmanager holds) cannot approve its own decision
    resp = await client.post(f"/actions/{first['id']}/approve", headers=AUTH)
    assert resp.status == 403 and "webhook token" in (await resp.json())["error"]
    assert (await client.post(f"/actions/{first['id']}/reject", headers=AUTH)).status == 403
    # a viewer reads, never decides
    assert (await client.post(f"/actions/{first['id']}/approve", headers=bearer(VICTOR))).status == 403
    assert (await client.get("/actions", headers=bearer(VICTOR))).status == 200
    assert (await client.post(f"/actions/{first['id']}/approve", headers=bearer("nobody"))).status == 401
    assert (await wait_done(client, first["id"]))["state"] == "pending" and recorder.runs == []
    # X-Pgwarden-User is a comment only: the journal records whose token it was
    headers = {**bearer(ALICE), "X-Pgwarden-User": "mallory"}
    resp = await client.post(f"/actions/{first['id']}/approve", headers=headers)
    assert resp.status == 202 and (await resp.json())["decided_by"] == "alice"
    row = await wait_done(client, first["id"])
    assert row["outcome"] == "succeeded" and row["decided_by"] == "alice"
    resp = await client.post(f"/actions/{second['id']}/reject", headers=bearer(ALICE))
    assert resp.status == 200
    row = await wait_done(client, second["id"])
    assert row["outcome"] == "rejected" and row["decided_by"] == "alice"
    assert len(recorder.runs) == 1


async def test_without_approvers_nothing_can_approve(
    make_config: ConfigFactory, client_for: ClientFactory
) -> None:
    client = await client_for(make_config(playbooks=[HELD]))
    (d,) = await post_alerts(client, alert())
    assert (await client.post(f"/actions/{d['id']}/approve", headers=AUTH)).status == 403
    assert (await wait_done(client, d["id"]))["state"] == "pending"


def test_config_errors_name_the_key(
    make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PGW_TEST_SAME", TOKEN)
    monkeypatch.setenv("PGW_TEST_A", "token-a-0123456789")
    with pytest.raises(ConfigError) as caught:
        make_config(
            approvers=[
                {"name": "alice", "token_env": "PGW_TEST_SAME"},  # the webhook's token
                {"name": "bob", "token_env": "PGW_TEST_A"},
                {"name": "carol", "token_env": "PGW_TEST_UNSET"},
            ],
            viewers=[{"name": "bob", "token_env": "PGW_TEST_A"}],  # a name and a token used twice
        )
    text = "\n".join(caught.value.errors)
    assert "approvers.0.token_env: this token is already in use" in text
    assert "viewers.0.token_env: this token is already in use" in text
    assert "approvers.2.token_env: environment variable PGW_TEST_UNSET is not set" in text
    assert "'bob' is named more than once" in text
    with pytest.raises(ConfigError, match=r"approvers\.0: .*exactly one of token_env or token_file"):
        make_config(approvers=[{"name": "alice"}])
    with pytest.raises(ConfigError, match=r"approvers\.0\.token: "):
        make_config(approvers=[{"name": "alice", "token": "inline"}])  # only from the environment or a file
    config = make_config(approvers=[{"name": "alice", "token_env": "PGW_TEST_A"}])
    assert [(p.name, p.role) for p in config.principals] == [("alice", "approver")]
    assert "token-a" not in repr(config.principals)
    assert "approvers: alice" in summary(config) and "viewers: -" in summary(config)
