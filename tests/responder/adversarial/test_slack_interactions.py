"""`POST /integrations/slack/interactions` under attack: forged, tampered, stale, future and replayed requests
(on one replica and on another sharing the PostgreSQL journal), hostile bodies, a `response_url` that is not
Slack's, and an endpoint with no signing secret configured. None decides anything, none is a 500, and no answer
or log line shows a secret."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
from aiohttp import web

from pgwarden.webconfig import WebConfig, WebConfigSchema
from responder import keys
from responder.api.auth import bearer_passes_web_auth
from responder.app import make_app
from responder.approvals.slack import APPROVE_ACTION, REJECT_ACTION, reply_allowed, reply_origins
from responder.config import Config
from responder.journal import Journal, open_store
from tests.pgwarden.certs import bcrypt_hash
from tests.support.clock import frozen_clock
from tests.support.journal import journal_sql
from tests.support.responder import AUTH, ClientFactory, ConfigFactory, Recorder
from tests.support.slack_requests import (
    ALICE_SLACK,
    BOB_SLACK,
    OTHER_SECRET,
    SIGNING_SECRET,
    STRANGER_SLACK,
    VICTOR_SLACK,
    Client,
    ResponseUrls,
    SlackRequest,
    form,
    pending,
    press_payload,
    response_urls,
    send,
    sign,
    signed,
    slack_config,
    slack_people,
)
from tests.support.webhook import wait_done

__all__ = ["response_urls", "slack_config", "slack_people"]  # the fixtures


async def still_pending(client: Client, action_id: int) -> None:
    row = await client.app[keys.JOURNAL].get(action_id)
    assert row is not None and (row.state, row.outcome, row.decided_by) == ("pending", None, None), row


def approve_body(action_id: int, urls: ResponseUrls, user: str = ALICE_SLACK, **extra: Any) -> bytes:
    return form(press_payload(APPROVE_ACTION, str(action_id), user, urls.url("r"), **extra))


def _forgeries(body: bytes, tampered: bytes) -> dict[str, SlackRequest]:
    now = int(time.time())
    good = signed(body)
    return {
        "another secret": signed(body, secret=OTHER_SECRET),
        "no signature": SlackRequest(
            body, {k: v for k, v in good.headers.items() if k != "X-Slack-Signature"}
        ),
        "no timestamp": SlackRequest(
            body, {k: v for k, v in good.headers.items() if k != "X-Slack-Request-Timestamp"}
        ),
        "timestamp not a number": SlackRequest(
            body,
            {
                **good.headers,
                "X-Slack-Request-Timestamp": "now",
                "X-Slack-Signature": sign(SIGNING_SECRET, "now", body),
            },
        ),
        "huge timestamp": SlackRequest(
            body,
            {
                **good.headers,
                "X-Slack-Request-Timestamp": "9" * 40,
                "X-Slack-Signature": sign(SIGNING_SECRET, "9" * 40, body),
            },
        ),
        "signature of another body": SlackRequest(tampered, good.headers),
        "timestamp moved": SlackRequest(body, {**good.headers, "X-Slack-Request-Timestamp": str(now + 1)}),
        "v1 scheme": SlackRequest(
            body,
            {**good.headers, "X-Slack-Signature": good.headers["X-Slack-Signature"].replace("v0=", "v1=")},
        ),
        "truncated signature": SlackRequest(
            body, {**good.headers, "X-Slack-Signature": good.headers["X-Slack-Signature"][:-2]}
        ),
        "not ASCII": SlackRequest(body, {**good.headers, "X-Slack-Signature": "v0=\u00e9" * 10}),
    }


FORGERIES = list(_forgeries(b"x", b"y"))


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_a_forged_request_decides_nothing_and_gets_no_reply(
    client_for: ClientFactory, slack_config: Config, response_urls: ResponseUrls, forgery: str
) -> None:
    client = await client_for(slack_config)
    waiting = await pending(client)
    body = approve_body(waiting, response_urls)
    tampered = approve_body(waiting, response_urls, user=BOB_SLACK)
    resp = await send(client, _forgeries(body, tampered)[forgery])
    assert resp.status == 401, await resp.text()
    assert await resp.json() == {"error": "the Slack signature does not verify"}
    await still_pending(client, waiting)
    assert await response_urls.settle() == []  # a forged request never reaches its response_url


@pytest.mark.parametrize(
    ("skew", "taken"),
    [(-301, False), (-86400, False), (301, False), (3600, False), (-290, True), (290, True)],
)
async def test_a_request_outside_the_five_minutes_decides_nothing(
    client_for: ClientFactory, slack_config: Config, response_urls: ResponseUrls, skew: int, taken: bool
) -> None:
    """Too old or from the future (a captured request held back, a skewed clock): refused, and the presser told;
    within the window, taken."""
    client = await client_for(slack_config)
    waiting = await pending(client)
    resp = await send(client, signed(approve_body(waiting, response_urls), timestamp=int(time.time()) + skew))
    (reply,) = await response_urls.wait_for(1)
    if taken:
        assert resp.status == 200 and reply["text"].startswith("You approved"), reply
        assert (await wait_done(client, waiting))["decided_by"] == "alice"
        return
    assert resp.status == 401
    assert await resp.json() == {"error": "stale request: its timestamp is more than 5 minutes from now"}
    assert "more than 5 minutes after it was made" in reply["text"]
    await still_pending(client, waiting)


async def test_a_replayed_request_is_refused(
    client_for: ClientFactory, slack_config: Config, response_urls: ResponseUrls, recorder: Recorder
) -> None:
    client = await client_for(slack_config)
    waiting = await pending(client)
    viewer = signed(approve_body(waiting, response_urls, user=VICTOR_SLACK))
    assert (await send(client, viewer)).status == 200  # refused as a viewer's, and taken
    replayed = await send(client, viewer)
    assert replayed.status == 409 and await replayed.json() == {"error": "replayed request"}
    press = signed(approve_body(waiting, response_urls))
    assert (await send(client, press)).status == 200
    assert (await send(client, press)).status == 409
    texts = [r["text"] for r in await response_urls.wait_for(4)]
    assert texts[1] == texts[3] == "This button press was already received: nothing more was done."
    row = await wait_done(client, waiting)
    assert (row["outcome"], row["decided_by"]) == ("succeeded", "alice")
    assert len(recorder.runs) == 1


async def test_a_request_replayed_to_another_replica_on_the_same_postgresql_journal_is_refused(
    client_for: ClientFactory,
    make_config: ConfigFactory,
    slack_people: dict[str, Any],
    response_urls: ResponseUrls,
    pg_journal: str,
) -> None:
    config = make_config(**slack_people, journal=pg_journal)
    one, two = await client_for(config), await client_for(config)
    waiting = await pending(one)
    # a stranger's press: refused on the first replica, whose reply a replay would otherwise get again
    stranger = signed(approve_body(waiting, response_urls, user=STRANGER_SLACK))
    assert (await send(one, stranger)).status == 200
    assert (await send(two, stranger)).status == 409
    reject = signed(form(press_payload(REJECT_ACTION, str(waiting), BOB_SLACK, response_urls.url("r"))))
    assert (await send(two, reject)).status == 200
    assert (await send(one, reject)).status == 409
    row = await wait_done(one, waiting)
    assert (row["outcome"], row["decided_by"]) == ("rejected", "bob")
    assert len(journal_sql(pg_journal, "SELECT signature FROM pgwarden_slack_requests")) == 2


async def test_taken_signatures_are_kept_for_their_window_then_purged(journal_url: str) -> None:
    journal = Journal(open_store(journal_url), "replay-test")
    await journal.start()
    try:
        assert await journal.take_slack_request("v0=aaaa", 600)
        assert not await journal.take_slack_request("v0=aaaa", 600)  # within its window: a replay
        await asyncio.sleep(0.01)
        assert await journal.take_slack_request("v0=bbbb", 0)  # keeping nothing older than now purges aaaa
        assert [r[0] for r in journal_sql(journal_url, "SELECT signature FROM pgwarden_slack_requests")] == [
            "v0=bbbb"
        ]
        assert await journal.take_slack_request("v0=aaaa", 600)
    finally:
        await journal.close()


def _hostile(urls: ResponseUrls) -> dict[str, tuple[bytes, str, int]]:
    """Bodies Slack would never send, each signed with the right secret: (body, content type, status)."""
    good = press_payload(APPROVE_ACTION, "1", ALICE_SLACK, urls.url())
    action = good["actions"][0]
    as_form = "application/x-www-form-urlencoded"
    bodies: dict[str, tuple[Any, str]] = {
        "JSON, not a form": (json.dumps(good).encode(), as_form),
        "JSON content type": (form(good), "application/json"),
        "no content type": (form(good), ""),
        "empty": (b"", as_form),
        "no payload": (b"token=abc", as_form),
        "two payloads": (form(good) + b"&" + form(good), as_form),
        "payload not JSON": (form("{"), as_form),
        "bad percent escapes": (b"payload=%ZZ%7B", as_form),
        "payload an array": (form([good]), as_form),
        "payload null": (form("null"), as_form),
        "payload nested deeply": (form("[" * 50_000 + "]" * 50_000), as_form),
        "not UTF-8": (b"payload=\xff\xfe", as_form),
        "another interaction type": (form({**good, "type": "view_submission"}), as_form),
        "no actions": (form({**good, "actions": []}), as_form),
        "actions not a list": (form({**good, "actions": {"0": action}}), as_form),
        "another action": (form({**good, "actions": [{**action, "action_id": "pgwarden_drop_db"}]}), as_form),
        "value a number": (form({**good, "actions": [{**action, "value": 1}]}), as_form),
        "value huge": (form({**good, "actions": [{**action, "value": "1" * 5000}]}), as_form),
        "no user": (form({k: v for k, v in good.items() if k != "user"}), as_form),
        "user a string": (form({**good, "user": ALICE_SLACK}), as_form),
        "user id not Slack's": (form({**good, "user": {"id": "alice'; DROP TABLE x"}}), as_form),
        "response_url a number": (form({**good, "response_url": 7}), as_form),
        "many fields": (b"&".join([b"a=1"] * 100) + b"&" + form(good), as_form),
    }
    return {name: (body, ctype, 400) for name, (body, ctype) in bodies.items()}


HOSTILE = list(_hostile(ResponseUrls()))


@pytest.mark.parametrize("shape", HOSTILE)
async def test_a_hostile_body_is_a_400_with_its_reason(
    client_for: ClientFactory, slack_config: Config, response_urls: ResponseUrls, shape: str
) -> None:
    client = await client_for(slack_config)
    waiting = await pending(client)
    body, content_type, status = _hostile(response_urls)[shape]
    request = signed(body)
    request.headers["Content-Type"] = content_type
    resp = await send(client, request)
    assert resp.status == status, await resp.text()
    error = (await resp.json())["error"]
    assert isinstance(error, str) and error and SIGNING_SECRET not in error
    await still_pending(client, waiting)
    assert await response_urls.settle(0.2) == []


async def test_a_body_over_the_limit_is_a_413(
    client_for: ClientFactory, make_config: ConfigFactory, slack_people: dict[str, Any]
) -> None:
    client = await client_for(make_config(**slack_people, max_body_bytes=4096))
    resp = await send(client, signed(form("x" * 5000)))
    assert resp.status == 413 and await resp.json() == {"error": "body over 4096 bytes"}


async def test_without_a_signing_secret_the_endpoint_is_not_there(
    client_for: ClientFactory,
    make_config: ConfigFactory,
    slack_people: dict[str, Any],
    response_urls: ResponseUrls,
) -> None:
    unsigned = {**slack_people, "notify": {}}
    client = await client_for(make_config(**unsigned))
    waiting = await pending(client)
    resp = await send(client, signed(approve_body(waiting, response_urls)))
    assert resp.status == 404
    assert "no Slack receiver has a signing secret" in (await resp.json())["error"]
    await still_pending(client, waiting)


@pytest.mark.parametrize(
    "where",
    [
        "another local server",
        "http://169.254.169.254/latest/meta-data/iam/",
        "https://hooks.slack.com.evil.example/actions/x",
        "https://evil.example/https://hooks.slack.com/actions/x",
        "http://hooks.slack.com/actions/x",
        "https://hooks.slack.com:8443/actions/x",
        "file:///etc/passwd",
        "credentials in the local Slack's URL",
    ],
)
async def test_a_reply_goes_only_to_slack(
    client_for: ClientFactory,
    slack_config: Config,
    response_urls: ResponseUrls,
    aiohttp_server: Any,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    """An authentic press whose response_url is not Slack's (nor the configured Slack receiver's origin) gets
    no request sent there: the decision path's refusal is still taken, and a log line says why."""
    elsewhere = ResponseUrls()
    app = web.Application()
    app.router.add_post("/{tail:.*}", elsewhere.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    url = {
        "another local server": f"{str(server.make_url('')).rstrip('/')}/actions/T0/1/x",
        "credentials in the local Slack's URL": response_urls.url().replace("http://", "http://u:p@"),
    }.get(where, where)
    client = await client_for(slack_config)
    waiting = await pending(client)
    payload = press_payload(APPROVE_ACTION, str(waiting), STRANGER_SLACK, url)
    with caplog.at_level(logging.WARNING, logger="responder"):
        assert (await send(client, signed(form(payload)))).status == 200
        assert await elsewhere.settle() == [] and await response_urls.settle(0) == []
    assert any(r.getMessage() == "slack reply refused: response_url is not Slack's" for r in caplog.records)
    await still_pending(client, waiting)


def test_the_reply_origins_are_slacks_and_the_configured_receivers(slack_config: Config) -> None:
    origins = reply_origins(slack_config.notify)
    local = slack_config.notify.receivers[0].url.split("/services/")[0]
    assert reply_allowed("https://hooks.slack.com/actions/T0/1/abc", origins)
    assert reply_allowed("https://HOOKS.slack.com:443/actions/T0/1/abc", origins)
    assert reply_allowed(f"{local}/actions/T0/1/abc", origins)
    for url in (
        "https://slack.com.evil/x",
        "http://hooks.slack.com/x",
        "https://hooks.slack.com:99999/x",
        "//x",
        "x",
    ):
        assert not reply_allowed(url, origins), url


async def test_no_answer_and_no_log_line_shows_a_secret(
    client_for: ClientFactory,
    slack_config: Config,
    response_urls: ResponseUrls,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await client_for(slack_config)
    waiting = await pending(client)
    webhook_path = "/services/T0TEAM001/B0HOOK001/x"
    answers = []
    with caplog.at_level(logging.DEBUG):
        for request in (
            signed(approve_body(waiting, response_urls), secret=OTHER_SECRET),
            signed(approve_body(waiting, response_urls), timestamp=int(time.time()) - 3600),
            signed(approve_body(waiting, response_urls, user=STRANGER_SLACK)),
            signed(approve_body(waiting, response_urls)),
            signed(form("{")),
        ):
            resp = await send(client, request)
            answers.append(await resp.text())
        await response_urls.wait_for(3)
        actions = await (await client.get("/actions", headers=AUTH)).text()
    shown = "\n".join([*answers, actions, caplog.text, *(r["text"] for r in response_urls.replies)])
    for secret in (SIGNING_SECRET, webhook_path, "b0gus5ecretpart"):
        assert secret not in shown


async def test_basic_auth_does_not_stand_between_slack_and_its_route(
    aiohttp_client: Any, slack_config: Config, response_urls: ResponseUrls
) -> None:
    """With `--web.config.file` basic auth, Slack (which cannot send it) still reaches the interactions route,
    where its signature is the credential; every other route still wants basic auth."""
    web_config = WebConfig(WebConfigSchema(basic_auth_users={"ops": bcrypt_hash("ops-password")}))
    app = web_config.apply(make_app(slack_config, clock=frozen_clock), also_accept=bearer_passes_web_auth)
    client: Client = await aiohttp_client(app)
    waiting = await pending(client)  # the webhook's token passes basic auth
    assert (await client.get("/ui/login")).status == 401
    forged = await send(client, signed(approve_body(waiting, response_urls), secret=OTHER_SECRET))
    assert forged.status == 401 and await forged.json() == {"error": "the Slack signature does not verify"}
    assert (await send(client, signed(approve_body(waiting, response_urls)))).status == 200
    assert (await wait_done(client, waiting))["decided_by"] == "alice"
