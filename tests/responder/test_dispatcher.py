"""A decision's way: journaled before 202, run after, its outcome; dry-run, failures, approval, expiry, shutdown."""

from __future__ import annotations

import asyncio
import time

from responder import keys
from tests.support.responder import APPROVE, ClientFactory, ConfigFactory, Recorder, record_playbook
from tests.support.webhook import alert, post_alerts, wait_done


async def test_accepts_journals_and_runs_after_answering(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    config = make_config(playbooks=[record_playbook(params={"sleep": "1s"})])
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
        playbooks=[record_playbook(mode="dry-run")],
    )
    client = await client_for(config)
    (d,) = await post_alerts(client, alert())
    assert (await wait_done(client, d["id"]))["outcome"] == "dry_run"
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
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder, approvers: list[dict[str, str]]
) -> None:
    config = make_config(
        approvers=approvers,
        playbooks=[record_playbook(require_approval=True)],
    )
    client = await client_for(config)
    first, second = await post_alerts(client, alert(), alert())
    assert first["state"] == "pending" and second["state"] == "pending"
    await asyncio.sleep(0.2)
    assert recorder.runs == []
    assert "pgwarden_responder_actions_pending 2.0" in await (await client.get("/metrics")).text()
    resp = await client.post(f"/actions/{first['id']}/approve", headers=APPROVE)
    assert resp.status == 202
    row = await wait_done(client, first["id"])
    assert row["outcome"] == "succeeded" and row["decided_by"] == "alice"
    assert (await client.post(f"/actions/{first['id']}/approve", headers=APPROVE)).status == 409
    resp = await client.post(f"/actions/{second['id']}/reject", headers=APPROVE)
    assert resp.status == 200
    assert (await wait_done(client, second["id"]))["outcome"] == "rejected"
    assert "pgwarden_responder_actions_pending 0.0" in await (await client.get("/metrics")).text()
    assert (await client.post("/actions/999999/approve", headers=APPROVE)).status == 404
    assert len(recorder.runs) == 1


async def test_pending_actions_expire(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder, approvers: list[dict[str, str]]
) -> None:
    config = make_config(
        approvers=approvers,
        approval_timeout="300ms",
        replica_timeout="1s",
        playbooks=[record_playbook(require_approval=True)],
    )
    client = await client_for(config)
    a, b = await post_alerts(client, alert(), alert())
    await asyncio.sleep(0.4)
    assert (await client.post(f"/actions/{a['id']}/approve", headers=APPROVE)).status == 410
    deadline = time.monotonic() + 5
    while (row := await wait_done(client, b["id"]))["outcome"] != "expired":
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.1)
    assert recorder.runs == []


async def test_graceful_shutdown_waits_for_running_actions(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    config = make_config(playbooks=[record_playbook(params={"sleep": "500ms"})])
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
        assert row is not None and row.outcome == "succeeded"
    finally:
        await again.close()
    assert journal is not None
