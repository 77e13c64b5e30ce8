"""From alerts to decisions: resolved and unmatched alerts, duplicates, cooldown, the daily cap, targets, approval."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from devtools.motoserver import MotoServer
from tests.responder.playbooks.rds import rds_config
from tests.support.responder import AUTH, ClientFactory, ConfigFactory, Recorder
from tests.support.webhook import alert, post_alerts, wait_done


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


async def test_rds_alert_without_dbidentifier_is_no_target(
    make_config: ConfigFactory, client_for: ClientFactory, moto_server: MotoServer
) -> None:
    client = await client_for(rds_config(make_config, moto_server))
    (d,) = await post_alerts(client, alert("RDSCPUHigh"))
    assert d["outcome"] == "no_target"
    (d,) = await post_alerts(client, alert("RDSCPUHigh", dbidentifier="bad id; rm -rf /"))
    assert d["outcome"] == "no_target"


async def test_repeat_while_firing_decides_again_in_each_cooldown_window(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder
) -> None:
    playbooks = [
        {
            "name": name,
            "match": {"alertname": "TestAlert"},
            "action": "record",
            "cooldown": "3s",
            "repeat": repeat,
        }
        for name, repeat in (("again", "while_firing"), ("once", "once"))
    ]
    client = await client_for(make_config(playbooks=playbooks))
    starts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    firing = alert(fingerprint="still-firing", starts_at=starts)

    async def deliver() -> dict[str, dict[str, Any]]:
        """Post the still-firing alert; each playbook's decision once it is done."""
        decisions = await post_alerts(client, firing)
        return {
            d["playbook"]: d if d["state"] == "done" else await wait_done(client, d["id"]) for d in decisions
        }

    first = await deliver()
    assert first["again"]["outcome"] == first["once"]["outcome"] == "succeeded"
    redelivery = await deliver()  # same window: nobody acts twice
    assert redelivery["once"]["outcome"] == "duplicate" and redelivery["again"]["outcome"] != "succeeded"
    deadline = time.monotonic() + 30
    while (later := await deliver())["again"]["outcome"] != "succeeded":
        # a window opened but the cooldown since the last action is not over yet: refused, the key released
        assert later["again"]["outcome"] in ("duplicate", "cooldown"), later
        assert time.monotonic() < deadline, later
        await asyncio.sleep(0.5)
    assert later["once"]["outcome"] == "duplicate"
    assert sorted(r["playbook"] for r in recorder.runs) == ["again", "again", "once"]
    again = await deliver()  # the window that just acted is taken
    assert again["again"]["outcome"] != "succeeded" and len(recorder.runs) == 3
