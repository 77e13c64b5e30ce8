"""What the approval-link and two-person tests share: three approvers and a viewer with tokens of their own,
playbooks that wait for one or two approvals, links for them, and reading the confirmation page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from responder import keys
from responder.approvals.links import sign_link
from responder.principals import Principal
from tests.support.webhook import alert, post_alerts

ALICE, BOB, CAROL = "alice-approver-token-0123", "bob-approver-token-45678", "carol-approver-token-9012"
VICTOR = "victor-viewer-token-0123"
HELD = {"name": "held", "match": {"alertname": "Held"}, "action": "record", "require_approval": True}
TWO = {"name": "two", "match": {"alertname": "Two"}, "action": "record", "require_approval": {"approvals": 2}}
Client = TestClient[web.Request, web.Application]


def people(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, carol: bool = True) -> dict[str, Any]:
    """`approvers:` alice, bob (and carol), `viewers:` victor, each token from the environment or a file."""
    monkeypatch.setenv("PGW_TEST_ALICE_TOKEN", ALICE)
    monkeypatch.setenv("PGW_TEST_BOB_TOKEN", BOB)
    monkeypatch.setenv("PGW_TEST_CAROL_TOKEN", CAROL)
    (tmp_path / "victor.token").write_text(VICTOR + "\n")
    approvers = [
        {"name": "alice", "token_env": "PGW_TEST_ALICE_TOKEN"},
        {"name": "bob", "token_env": "PGW_TEST_BOB_TOKEN"},
    ]
    if carol:
        approvers.append({"name": "carol", "token_env": "PGW_TEST_CAROL_TOKEN"})
    return {
        "approvers": approvers,
        "viewers": [{"name": "victor", "token_file": str(tmp_path / "victor.token")}],
        "playbooks": [HELD, TWO],
    }


def person(client: Client, name: str) -> Principal:
    return next(p for p in client.app[keys.CONFIG].principals if p.name == name)


def link(client: Client, name: str, action_id: int) -> str:
    """The path of `name`'s approval link for `action_id`, as a message gives it."""
    return "/ui/confirm/" + sign_link(person(client, name), action_id)


def form_csrf(html: str) -> str | None:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    return found.group(1) if found else None


async def open_link(client: Client, path: str) -> tuple[int, str]:
    resp = await client.get(path)
    return resp.status, await resp.text()


async def press(client: Client, path: str, decision: str = "approve") -> tuple[int, str]:
    """Open the link (GET) and press one of its buttons (POST with the form's CSRF token)."""
    status, html = await open_link(client, path)
    csrf = form_csrf(html)
    assert status == 200 and csrf is not None, html
    resp = await client.post(path, data={"csrf": csrf, "decision": decision})
    return resp.status, await resp.text()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def two(client: Client) -> int:
    """A decision of the `two` playbook (two approvers needed), waiting: its id."""
    (d,) = await post_alerts(client, alert("Two", target="production", datname="app"))
    assert d["state"] == "pending"
    return int(d["id"])
