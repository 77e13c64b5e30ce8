"""The HTTP contract: status codes, auth, journaling before 202, resolved alerts, approval, rate guards."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from responder import keys
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


async def test_accepts_journals_and_runs_after_answering(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    config = make_config(
        playbooks=[
            {
                "name": "rec",
                "match": {"alertname": "TestAlert"},
                "action": "record",
                "params": {"sleep": "1s"},
            }
        ]
    )
    client = await client_for(config)
    started = time.monotonic()
    decisions = await post_alerts(client, alert())
    assert time.monotonic() - started < 0.5, "the webhook must not wait for the playbook"
    assert decisions[0]["state"] == "queued" and decisions[0]["playbook"] == "rec"
    row = await wait_done(client, decisions[0]["id"])
    assert row["outcome"] == "succeeded"
    assert row["plan"] == {"target": "pg:production"}
    assert row["timings"]["duration_seconds"] >= 1.0
    assert row["alert"]["alertname"] == "TestAlert" and row["target"].startswith("production")
    assert len(recorder.runs) == 1


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


async def test_resolved_alerts_are_journaled_and_run_nothing(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    client = await client_for(make_config())
    firing, resolved = alert(), alert(status="resolved")
    decisions = await post_alerts(client, firing, resolved)
    assert [d["outcome"] for d in decisions] == [None, "resolved"]
    await wait_done(client, decisions[0]["id"])
    assert len(recorder.runs) == 1
    rows = (await (await client.get("/actions", headers=AUTH)).json())["actions"]
    assert {r["alert"]["status"] for r in rows} == {"firing", "resolved"}


async def test_unmatched_alert_is_journaled(make_config: ConfigFactory, client_for: ClientFactory) -> None:
    client = await client_for(make_config())
    decisions = await post_alerts(client, alert("SomethingElse"))
    assert decisions[0]["outcome"] == "unmatched"


async def test_redelivery_is_a_duplicate(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    client = await client_for(make_config())
    a = alert(fingerprint="abc123")
    first = await post_alerts(client, a)
    second = await post_alerts(client, a)
    assert second[0]["outcome"] == "duplicate" and second[0]["duplicate_of"] == first[0]["id"]
    await wait_done(client, first[0]["id"])
    # a new firing of the same alert (new startsAt) is a new decision
    third = await post_alerts(client, alert(fingerprint="abc123", starts_at="2026-11-24T04:00:00Z"))
    assert third[0]["state"] == "queued"
    await wait_done(client, third[0]["id"])
    assert len(recorder.runs) == 2


async def test_dry_run_journals_plan_and_does_nothing(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    client = await client_for(make_config(mode="dry-run"))
    (d,) = await post_alerts(client, alert())
    row = await wait_done(client, d["id"])
    assert row["outcome"] == "dry_run" and row["mode"] == "dry-run"
    assert row["plan"] == {"target": "pg:production"}
    assert recorder.runs == []


async def test_per_playbook_mode_overrides_global(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    config = make_config(
        mode="enforce",
        playbooks=[
            {"name": "rec", "match": {"alertname": "TestAlert"}, "action": "record", "mode": "dry-run"}
        ],
    )
    client = await client_for(config)
    (d,) = await post_alerts(client, alert())
    assert (await wait_done(client, d["id"]))["outcome"] == "dry_run"
    assert recorder.runs == []


async def test_cooldown_per_target(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    config = make_config(
        targets=[
            {"name": "a", "dsn": "postgresql://x@127.0.0.1:1/a"},
            {"name": "b", "dsn": "postgresql://x@127.0.0.1:1/b"},
        ],
        playbooks=[
            {"name": "rec", "match": {"alertname": "TestAlert"}, "action": "record", "cooldown": "1h"}
        ],
    )
    client = await client_for(config)
    (first,) = await post_alerts(client, alert(target="a"))
    assert (await wait_done(client, first["id"]))["outcome"] == "succeeded"
    (second,) = await post_alerts(client, alert(target="a"))
    row = await wait_done(client, second["id"])
    assert row["outcome"] == "cooldown" and "cooldown" in row["error"]
    (other,) = await post_alerts(client, alert(target="b"))
    assert (await wait_done(client, other["id"]))["outcome"] == "succeeded"
    assert [r["target"] for r in recorder.runs] == ["pg:a", "pg:b"]


async def test_daily_cap(make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder) -> None:
    config = make_config(
        playbooks=[{"name": "rec", "match": {"alertname": "TestAlert"}, "action": "record", "max_per_day": 2}]
    )
    client = await client_for(config)
    outcomes = []
    for _ in range(3):
        (d,) = await post_alerts(client, alert())
        outcomes.append((await wait_done(client, d["id"]))["outcome"])
    assert outcomes == ["succeeded", "succeeded", "cooldown"]
    assert len(recorder.runs) == 2


async def test_no_target(make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder) -> None:
    client = await client_for(make_config())
    (d,) = await post_alerts(client, alert(target="staging"))
    assert d["outcome"] == "no_target"
    metrics = await (await client.get("/metrics")).text()
    assert (
        'pgwarden_responder_actions_total{action="record",outcome="no_target",playbook="rec"} 1.0' in metrics
    )
    assert recorder.runs == []


async def test_failure_and_timeout_are_failed(make_config: ConfigFactory, client_for: ClientFactory) -> None:
    config = make_config(
        playbooks=[
            {"name": "boom", "match": {"alertname": "Boom"}, "action": "record", "params": {"fail": True}},
            {
                "name": "slow",
                "match": {"alertname": "Slow"},
                "action": "record",
                "params": {"sleep": "10s"},
                "timeout": "200ms",
            },
        ]
    )
    client = await client_for(config)
    boom, slow = await post_alerts(client, alert("Boom"), alert("Slow"))
    row = await wait_done(client, boom["id"])
    assert row["outcome"] == "failed" and "boom" in row["error"]
    row = await wait_done(client, slow["id"])
    assert row["outcome"] == "failed" and "timed out" in row["error"]


async def test_approval_flow(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    config = make_config(
        playbooks=[
            {"name": "rec", "match": {"alertname": "TestAlert"}, "action": "record", "require_approval": True}
        ]
    )
    client = await client_for(config)
    first, second = await post_alerts(client, alert(), alert())
    assert first["state"] == "pending" and second["state"] == "pending"
    await asyncio.sleep(0.2)
    assert recorder.runs == []
    assert "pgwarden_responder_actions_pending 2.0" in await (await client.get("/metrics")).text()
    resp = await client.post(f"/actions/{first['id']}/approve", headers={**AUTH, "X-Pgwarden-User": "alice"})
    assert resp.status == 202
    row = await wait_done(client, first["id"])
    assert row["outcome"] == "succeeded" and row["decided_by"] == "alice"
    assert (await client.post(f"/actions/{first['id']}/approve", headers=AUTH)).status == 409
    resp = await client.post(f"/actions/{second['id']}/reject", headers=AUTH)
    assert resp.status == 200
    assert (await wait_done(client, second["id"]))["outcome"] == "rejected"
    assert "pgwarden_responder_actions_pending 0.0" in await (await client.get("/metrics")).text()
    assert (await client.post("/actions/999999/approve", headers=AUTH)).status == 404
    assert len(recorder.runs) == 1


async def test_pending_actions_expire(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    config = make_config(
        approval_timeout="300ms",
        replica_timeout="1s",
        playbooks=[
            {"name": "rec", "match": {"alertname": "TestAlert"}, "action": "record", "require_approval": True}
        ],
    )
    client = await client_for(config)
    a, b = await post_alerts(client, alert(), alert())
    await asyncio.sleep(0.4)
    assert (await client.post(f"/actions/{a['id']}/approve", headers=AUTH)).status == 410
    deadline = time.monotonic() + 5
    while (row := await wait_done(client, b["id"]))["outcome"] != "expired":
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.1)
    assert recorder.runs == []


async def test_scale_instance_requires_approval_by_default(make_config: ConfigFactory) -> None:
    config = make_config(
        aws={"region": "us-east-1"},
        playbooks=[
            {
                "name": "scale",
                "match": {"alertname": "RDSCPUHigh"},
                "action": "scale_instance",
                "params": {"ladder": ["db.t3.medium", "db.r6g.large"], "max_class": "db.r6g.large"},
            }
        ],
    )
    assert config.playbooks[0].require_approval is True


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


async def test_graceful_shutdown_waits_for_running_actions(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    config = make_config(
        playbooks=[
            {
                "name": "rec",
                "match": {"alertname": "TestAlert"},
                "action": "record",
                "params": {"sleep": "500ms"},
            }
        ]
    )
    client = await client_for(config)
    (d,) = await post_alerts(client, alert())
    for _ in range(500):
        if recorder.runs:
            break
        await asyncio.sleep(0.01)
    journal = client.app[keys.JOURNAL]
    await client.close()  # runs the cleanup contexts: the executor waits, then the journal closes
    # reopen the same journal file: the action finished before shutdown completed
    from responder.journal import Journal, open_store

    again = Journal(open_store(config.journal), "check")
    await again.start()
    try:
        row = await again.get(d["id"])
        assert row is not None and row["outcome"] == "succeeded"
    finally:
        await again.close()
    assert journal is not None
