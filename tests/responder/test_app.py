"""The HTTP contract: status codes, auth, malformed payloads, the body limit, /actions and /metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.responder.conftest import (
    AUTH,
    TOKEN,
    ClientFactory,
    ConfigFactory,
    Recorder,
    alert,
    payload,
    post_alerts,
    wait_done,
)


async def test_auth(make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder) -> None:
    client = await client_for(make_config())
    body = payload(alert())
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
    ):
        resp = await client.post("/webhook", json=body, headers=headers)
        assert resp.status == 401
    assert (await client.get("/actions")).status == 401
    assert (await client.post("/actions/1/approve")).status == 401
    assert (await client.get("/healthz")).status == 200
    await asyncio.sleep(0.1)
    assert recorder.runs == []


def test_token_required_unless_auth_none(make_config: ConfigFactory) -> None:
    from responder.config import ConfigError

    with pytest.raises(ConfigError, match="token_env"):
        make_config(token=None)
    assert make_config(token=None, auth="none").token is None


async def test_auth_none_accepts_without_header(
    make_config: ConfigFactory, client_for: ClientFactory
) -> None:
    client = await client_for(make_config(token=None, auth="none"))
    resp = await client.post("/webhook", json=payload(alert()))
    assert resp.status == 202


async def test_token_from_env_and_file(
    make_config: ConfigFactory, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("RESPONDER_TOKEN_T", "from-env")
    client = await client_for(make_config(token=None, token_env="RESPONDER_TOKEN_T"))
    resp = await client.post("/webhook", json=payload(alert()), headers={"Authorization": "Bearer from-env"})
    assert resp.status == 202
    (tmp_path / "tok").write_text("from-file\n")
    config = make_config(token=None, token_file=str(tmp_path / "tok"))
    assert config.token == "from-file"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "invalid JSON"),
        (b"[]", "JSON object"),
        (b'{"version": "4", "status": "firing"}', "alerts"),
        (b'{"version": "3", "status": "firing", "alerts": []}', "version"),
    ],
)
async def test_malformed_is_400_with_reason(
    make_config: ConfigFactory, client_for: ClientFactory, body: bytes, reason: str
) -> None:
    client = await client_for(make_config())
    resp = await client.post("/webhook", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 400
    assert reason in (await resp.json())["reason"]


async def test_malformed_alert_rejects_the_payload_and_runs_nothing(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    client = await client_for(make_config())
    bad = alert()
    bad["labels"]["target"] = 42  # label values are strings
    resp = await client.post("/webhook", json=payload(alert(), bad), headers=AUTH)
    assert resp.status == 400
    rows = (await (await client.get("/actions", headers=AUTH)).json())["actions"]
    assert rows == [] and recorder.runs == []


async def test_body_limit_is_413(make_config: ConfigFactory, client_for: ClientFactory) -> None:
    client = await client_for(make_config(max_body_bytes=4096))
    big = payload(alert(description="x" * 5000))
    resp = await client.post("/webhook", json=big, headers=AUTH)
    assert resp.status == 413

    # chunked, without Content-Length
    async def gen() -> Any:
        for _ in range(10):
            yield b"x" * 1000

    resp = await client.post("/webhook", data=gen(), headers=AUTH)
    assert resp.status == 413


async def test_actions_listing(make_config: ConfigFactory, client_for: ClientFactory) -> None:
    client = await client_for(make_config())
    ids = [d["id"] for d in await post_alerts(client, alert("X1"), alert("X2"), alert("X3"))]
    resp = await client.get("/actions?limit=2", headers=AUTH)
    rows = (await resp.json())["actions"]
    assert [r["id"] for r in rows] == sorted(ids, reverse=True)[:2]
    for bad in ("0", "abc", "100000"):
        assert (await client.get(f"/actions?limit={bad}", headers=AUTH)).status == 400


async def test_metrics_names(make_config: ConfigFactory, client_for: ClientFactory) -> None:
    client = await client_for(make_config())
    (d,) = await post_alerts(client, alert())
    await wait_done(client, d["id"])
    await client.post("/webhook", data=b"{", headers=AUTH)
    text = await (await client.get("/metrics")).text()
    for needle in (
        'pgwarden_responder_webhooks_total{code="202"} 1.0',
        'pgwarden_responder_webhooks_total{code="400"} 1.0',
        'pgwarden_responder_alerts_total{status="firing"} 1.0',
        'pgwarden_responder_actions_total{action="record",outcome="succeeded",playbook="rec"} 1.0',
        'pgwarden_responder_action_duration_seconds_count{action="record"} 1.0',
        "pgwarden_responder_backends_terminated_total 0.0",
    ):
        assert needle in text
