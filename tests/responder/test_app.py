"""The HTTP contract: status codes, auth, malformed payloads, the body limit, /actions and /metrics."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.support.responder import APPROVE, AUTH, TOKEN, ClientFactory, ConfigFactory, Recorder
from tests.support.webhook import alert, payload, post_alerts, wait_done


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


async def test_a_malformed_alert_is_rejected_alone(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    client = await client_for(make_config())
    bad = alert()
    bad["labels"]["target"] = 42  # label values are strings
    resp = await client.post("/webhook", json=payload(alert(), bad), headers=AUTH)
    assert resp.status == 202
    body = await resp.json()
    good, rejected = body["decisions"]
    assert (
        body["rejected"] == 1 and rejected["outcome"] == "rejected" and "labels.target" in rejected["reason"]
    )
    assert (await wait_done(client, good["id"]))["outcome"] == "succeeded"
    assert len(recorder.runs) == 1


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


async def _raw_post(client: Any, path: str, header: bytes, body: bytes) -> int:
    """One request with exactly these header bytes; its status code."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (path.encode(), header, len(body), body)
    )
    status = await reader.readline()
    writer.close()
    return int(status.split()[1])


async def test_non_utf8_authorization_is_401(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    client = await client_for(make_config())
    body = json.dumps(payload(alert())).encode()
    for header in (b"Authorization: Bearer \xff\xfe\xfa", b"Authorization: \xc3\x28 " + TOKEN.encode()):
        assert await _raw_post(client, "/webhook", header, body) == 401
        assert await _raw_post(client, "/actions/1/approve", header, b"") == 401
    assert recorder.runs == []


async def test_bad_alerts_are_rejected_and_the_good_ones_act(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder, journal_url: str
) -> None:
    client = await client_for(make_config(journal=journal_url))
    nul_fingerprint = alert(fingerprint="ab\u0000cd")
    nul_alertname = alert("Test\u0000Alert")
    surrogate = alert(datname="app\ud800")
    too_long = alert(description="x" * 5000)
    good = alert()
    body = json.dumps(payload(nul_fingerprint, good, nul_alertname, surrogate, too_long)).encode()
    resp = await client.post("/webhook", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 202, await resp.text()
    answer = await resp.json()
    assert answer["rejected"] == 4
    outcomes = [d["outcome"] for d in answer["decisions"]]
    assert outcomes == ["rejected", None, "rejected", "rejected", "rejected"]
    reasons = [d["reason"] for d in answer["decisions"] if d["outcome"] == "rejected"]
    assert "fingerprint contains a NUL" in reasons[0] and "NUL" in reasons[1]
    assert "'datname' is not valid UTF-8" in reasons[2] and "too long" in reasons[3]
    assert (await wait_done(client, answer["decisions"][1]["id"]))["outcome"] == "succeeded"
    rows = {r["id"]: r for r in (await (await client.get("/actions", headers=AUTH)).json())["actions"]}
    first = rows[answer["decisions"][0]["id"]]
    assert first["outcome"] == "rejected" and first["alert"]["fingerprint"] == "ab\\x00cd"
    assert rows[answer["decisions"][3]["id"]]["alert"]["labels"]["datname"] == "app\\ud800"
    assert len(recorder.runs) == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'pgwarden_responder_alerts_total{status="rejected"} 4.0' in metrics


async def test_approval_id_out_of_range_is_404(
    make_config: ConfigFactory, client_for: ClientFactory, approvers: list[dict[str, str]]
) -> None:
    client = await client_for(make_config(approvers=approvers))
    for path in ("99999999999999999999/approve", "9223372036854775808/reject", "-1/approve", "0/reject"):
        resp = await client.post(f"/actions/{path}", headers=APPROVE)
        assert resp.status == 404, (path, await resp.text())
