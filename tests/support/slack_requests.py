"""Slack's side of the interactions tests: button presses built and signed the way Slack builds and signs them,
and a local `response_url` that checks each ephemeral reply the way Slack would.

The signer is written out here (HMAC-SHA256 of `v0:{timestamp}:{body}`, hex, prefixed `v0=`), from Slack's
documentation, so that the server's use of slack_sdk's verifier is checked against an independent signer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from responder.config import Config
from tests.support.responder import APPROVER, ConfigFactory, record_playbook
from tests.support.webhook import alert, post_alerts, wait_done

INTERACTIONS = "/integrations/slack/interactions"
Client = TestClient[web.Request, web.Application]
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the shape of a Slack app's signing secret (32 hex-ish)
OTHER_SECRET = "0123456789abcdef0123456789abcdef"
ALICE_SLACK, BOB_SLACK, VICTOR_SLACK, STRANGER_SLACK = "U0ALICE01", "U0BOB0002", "U0VICTOR3", "U0NOBODY4"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """Slack's `X-Slack-Signature` of `body` sent at `timestamp`."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def press_payload(action: str, value: str, user_id: str, response_url: str, **extra: Any) -> dict[str, Any]:
    """A `block_actions` payload as Slack sends it for a button in a message (the fields it always has)."""
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": "someone", "name": "someone", "team_id": "T0TEAM001"},
        "api_app_id": "A0APP0001",
        "token": "verification-token-deprecated",
        "container": {"type": "message", "message_ts": "1733580000.000100", "channel_id": "C0CHAN001"},
        "trigger_id": "1234567890.0987654321.abcdef",
        "team": {"id": "T0TEAM001", "domain": "example"},
        "channel": {"id": "C0CHAN001", "name": "db-oncall"},
        "message": {"type": "message", "ts": "1733580000.000100", "text": "pgwarden"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action,
                "block_id": "pgwarden_decision",
                "text": {"type": "plain_text", "text": "Approve" if action.endswith("approve") else "Reject"},
                "value": value,
                "action_ts": "1733580001.000200",
            }
        ],
        **extra,
    }


def form(payload: Any) -> bytes:
    """The body Slack posts: a form with one `payload` field, the JSON text (a str is sent as it is)."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return urlencode({"payload": text}).encode()


@dataclass(frozen=True)
class SlackRequest:
    body: bytes
    headers: dict[str, str]


def signed(
    body: bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None, **headers: str
) -> SlackRequest:
    """`body` with Slack's headers: its timestamp (now unless given) and signature."""
    ts = int(time.time()) if timestamp is None else timestamp
    return SlackRequest(
        body,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": sign(secret, ts, body),
            **headers,
        },
    )


async def send(client: Client, request: SlackRequest) -> ClientResponse:
    return await client.post(INTERACTIONS, data=request.body, headers=request.headers)


@dataclass
class ResponseUrls:
    """A local Slack `response_url` endpoint: each POST is checked as Slack checks a reply (JSON, an ephemeral
    response that keeps the original message, a text) and kept; a bad one is answered 400 and kept apart."""

    base: str = ""
    replies: list[dict[str, Any]] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, name: str = "1") -> str:
        return f"{self.base}/actions/T0TEAM001/{name}/b0gus5ecretpart"

    async def handle(self, request: web.Request) -> web.Response:
        problem = None
        try:
            reply = await request.json()
        except ValueError:
            reply, problem = None, "not JSON"
        if request.content_type != "application/json":
            problem = f"content type {request.content_type}"
        elif not isinstance(reply, dict):
            problem = problem or "not an object"
        elif reply.get("response_type") != "ephemeral" or reply.get("replace_original") is not False:
            problem = f"not an ephemeral reply keeping the message: {reply}"
        elif not isinstance(reply.get("text"), str) or not reply["text"]:
            problem = "no text"
        async with self._arrived:
            if problem is None:
                assert isinstance(reply, dict)
                self.replies.append({"path": request.path, **reply})
            else:
                self.bad.append(problem)
            self._arrived.notify_all()
        return web.Response(status=400 if problem else 200, text=problem or "ok")

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        """The first `count` replies, waiting (up to 10 s) for them to arrive."""
        async with asyncio.timeout(10), self._arrived:
            await self._arrived.wait_for(lambda: len(self.replies) >= count)
        assert not self.bad, self.bad
        return self.replies[:count]

    async def settle(self, seconds: float = 0.5) -> list[dict[str, Any]]:
        """Every reply received after a short wait (for tests that expect none, or no more)."""
        await asyncio.sleep(seconds)
        assert not self.bad, self.bad
        return list(self.replies)


ALICE_TOKEN, BOB_TOKEN, VICTOR_TOKEN = APPROVER, "bob-approver-token-01234", "victor-viewer-token-0123"


@pytest.fixture
async def response_urls(aiohttp_server: Any) -> ResponseUrls:
    """The local Slack: its `response_url`s, and (its origin) the Slack receiver's webhook URL."""
    urls = ResponseUrls()
    app = web.Application()
    app.router.add_post("/{tail:.*}", urls.handle)
    server = await aiohttp_server(app, host="127.0.0.1", access_log=None)  # Slack's own log is not ours
    urls.base = str(server.make_url("")).rstrip("/")
    return urls


@pytest.fixture
def slack_people(monkeypatch: pytest.MonkeyPatch, response_urls: ResponseUrls) -> dict[str, Any]:
    """Config overrides: approvers alice and bob and viewer victor, each with a Slack user; a Slack receiver
    (the local Slack's webhook) with SIGNING_SECRET; the `rec` playbook held for approval."""
    for name, token in (("ALICE", ALICE_TOKEN), ("BOB", BOB_TOKEN), ("VICTOR", VICTOR_TOKEN)):
        monkeypatch.setenv(f"PGW_TEST_{name}", token)
    monkeypatch.setenv("PGW_TEST_SLACK_WEBHOOK", f"{response_urls.base}/services/T0TEAM001/B0HOOK001/x")
    monkeypatch.setenv("PGW_TEST_SLACK_SIGNING", SIGNING_SECRET)
    return {
        "approvers": [
            {"name": "alice", "token_env": "PGW_TEST_ALICE", "slack_user_id": ALICE_SLACK},
            {"name": "bob", "token_env": "PGW_TEST_BOB", "slack_user_id": BOB_SLACK},
        ],
        "viewers": [{"name": "victor", "token_env": "PGW_TEST_VICTOR", "slack_user_id": VICTOR_SLACK}],
        "notify": {
            "receivers": [
                {
                    "name": "oncall-slack",
                    "slack": {
                        "webhook_url_env": "PGW_TEST_SLACK_WEBHOOK",
                        "signing_secret_env": "PGW_TEST_SLACK_SIGNING",
                    },
                }
            ]
        },
        "playbooks": [record_playbook(require_approval=True)],
    }


@pytest.fixture
def slack_config(make_config: ConfigFactory, slack_people: dict[str, Any]) -> Config:
    """The responder of `slack_people`, on the default SQLite journal."""
    return make_config(**slack_people)


async def pending(client: Client) -> int:
    """A decision of the `rec` playbook, waiting for an approval: its id."""
    (d,) = await post_alerts(client, alert())
    row = await wait_done(client, d["id"])
    assert row["state"] == "pending", row
    return int(d["id"])
