"""One change per RDS instance at a time, and a change that was made is journaled as made (issue 19, holes 4
and 5), against a real moto server process.

moto applies ModifyDBInstance at once, so to keep a first change running while a second one claims, the
responder's own client waits ~1 s in a botocore `before-call` handler before each ModifyDBInstance is sent.
Every ModifyDBInstance the responders send is counted by such a handler too. AWS throttling is a `before-call`
handler that answers one DescribeDBInstances with a 400 `Throttling` error shaped as botocore's error parser
gives it (no Stubber: only that one call is replaced, everything else reaches moto).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from botocore.awsrequest import AWSResponse

from responder import keys
from tests.responder.playbooks.conftest import moto
from tests.responder.playbooks.rds import Moto
from tests.support.webhook import alert, post_alerts, wait_done

__all__ = ["moto"]  # the fixture, shared with the playbook tests

Client = TestClient[web.Request, web.Application]
REGION = "us-east-1"


def grow(name: str, alertname: str) -> dict[str, Any]:
    return {
        "name": name,
        "match": {"alertname": alertname},
        "action": "grow_storage",
        "params": {"increase_percent": 25, "max_allocated_gib": 1000},
    }


def scale(name: str, alertname: str) -> dict[str, Any]:
    return {
        "name": name,
        "match": {"alertname": alertname},
        "action": "scale_instance",
        "params": {"ladder": ["db.t3.medium", "db.r6g.large"], "max_class": "db.r6g.large"},
        "require_approval": False,
    }


class Modifications:
    """Every ModifyDBInstance the responders' clients send (counted before it is sent, optionally slowed)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.sent: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def watch(self, client: Client) -> None:
        rds = client.app[keys.RDS]
        assert rds is not None
        rds.client(REGION).meta.events.register("before-call.rds.ModifyDBInstance", self._before)

    def _before(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.sent.append(dict(params.get("body") or {}))
        if self.delay:
            time.sleep(self.delay)  # boto3 runs in a worker thread: the event loop goes on


async def responder(moto: Moto, playbooks: list[dict[str, Any]], **extra: Any) -> Client:
    """A responder with these playbooks on the moto server."""
    aws = {"region": REGION, "endpoint_url": moto.server.endpoint_url}
    return await moto.client_for(moto.make_config(aws=aws, playbooks=playbooks, **extra))


async def watched(moto: Moto, playbooks: list[dict[str, Any]]) -> tuple[Client, Modifications]:
    """A responder with these playbooks, its ModifyDBInstance calls recorded and each slowed by a second."""
    client = await responder(moto, playbooks)
    mods = Modifications(delay=1.0)
    mods.watch(client)
    return client, mods


def about(identifier: str, alertname: str, fingerprint: str | None = None) -> dict[str, Any]:
    return alert(alertname, fingerprint=fingerprint, dbidentifier=identifier, aws_region=REGION)


async def rows_of(client: Client, decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [await wait_done(client, d["id"]) for d in decisions]


def one_change(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The succeeded row and the refused one (guardrail: busy, or the 6 h history), whatever their order."""
    by_outcome = {r["outcome"]: r for r in rows}
    assert sorted(by_outcome) == ["guardrail", "succeeded"], rows
    refused = by_outcome["guardrail"]
    assert "one change at a time" in refused["error"] or "6h" in refused["error"], refused
    return by_outcome["succeeded"], refused


@pytest.mark.parametrize(
    ("playbooks", "alerts"),
    [
        pytest.param(
            [grow("grow-low", "RDSFreeStorageLow"), grow("grow-critical", "RDSFreeStorageCritical")],
            [("RDSFreeStorageLow", None), ("RDSFreeStorageCritical", None)],
            id="two-grow-playbooks-in-one-webhook",
        ),
        pytest.param(
            [grow("grow", "RDSFreeStorageLow")],
            [("RDSFreeStorageLow", "aaaa000000000001"), ("RDSFreeStorageLow", "aaaa000000000002")],
            id="two-fingerprints-on-one-playbook",
        ),
    ],
)
async def test_two_decisions_in_one_webhook_change_the_instance_once(
    moto: Moto, playbooks: list[dict[str, Any]], alerts: list[tuple[str, str | None]]
) -> None:
    ident = moto.instance(storage=100)
    client, mods = await watched(moto, playbooks)
    decisions = await post_alerts(client, *(about(ident, name, fingerprint) for name, fingerprint in alerts))
    assert len(decisions) == 2
    one_change(await rows_of(client, decisions))
    assert len(mods.sent) == 1, mods.sent
    assert moto.describe(ident)["AllocatedStorage"] == 125


async def test_grow_and_scale_at_once_change_the_instance_once(
    moto: Moto,
) -> None:
    ident = moto.instance("db.t3.medium", storage=100)
    playbooks = [grow("grow", "RDSFreeStorageLow"), scale("scale", "RDSCPUHigh")]
    client, mods = await watched(moto, playbooks)
    decisions = await post_alerts(client, about(ident, "RDSFreeStorageLow"), about(ident, "RDSCPUHigh"))
    _, refused = one_change(await rows_of(client, decisions))
    assert "one change at a time" in refused["error"], refused  # scale has no 6 h history: only the claim
    assert len(mods.sent) == 1, mods.sent
    after = moto.describe(ident)
    changed = (after["AllocatedStorage"] != 100) + (after["DBInstanceClass"] != "db.t3.medium")
    assert changed == 1, after


async def test_two_replicas_on_a_postgresql_journal_change_the_instance_once(
    moto: Moto,
    pg_journal: str,
) -> None:
    ident = moto.instance(storage=100)
    playbooks = [grow("grow-low", "RDSFreeStorageLow"), grow("grow-critical", "RDSFreeStorageCritical")]
    first = await responder(moto, playbooks, journal=pg_journal)
    second = await responder(moto, playbooks, journal=pg_journal)
    mods = Modifications(delay=1.0)
    mods.watch(first)
    mods.watch(second)
    low, critical = await asyncio.gather(
        post_alerts(first, about(ident, "RDSFreeStorageLow")),
        post_alerts(second, about(ident, "RDSFreeStorageCritical")),
    )
    one_change([await wait_done(first, low[0]["id"]), await wait_done(first, critical[0]["id"])])
    assert len(mods.sent) == 1, mods.sent
    assert moto.describe(ident)["AllocatedStorage"] == 125


class ThrottledOnce:
    """The first DescribeDBInstances after a ModifyDBInstance was sent answers 400 Throttling, as AWS does
    under load; every other call reaches moto."""

    def __init__(self) -> None:
        self.modified = 0
        self.throttled = 0

    def watch(self, client: Client) -> None:
        rds = client.app[keys.RDS]
        assert rds is not None
        events = rds.client(REGION).meta.events
        events.register("after-call.rds.ModifyDBInstance", self._modified)
        events.register_first("before-call.rds.DescribeDBInstances", self._describe)

    def _modified(self, http_response: Any, **_: Any) -> None:
        if http_response.status_code < 300:
            self.modified += 1

    def _describe(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self.modified != 1 or self.throttled:
            return None
        self.throttled += 1
        http = AWSResponse("https://rds.us-east-1.amazonaws.com/", 400, {}, None)
        parsed = {
            "Error": {"Type": "Sender", "Code": "Throttling", "Message": "Rate exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {}, "RetryAttempts": 0},
        }
        return http, parsed


async def test_a_change_made_under_throttling_is_journaled_as_made(
    moto: Moto,
) -> None:
    ident = moto.instance(storage=100)
    client = await responder(moto, [grow("grow", "RDSFreeStorageLow")])
    throttle = ThrottledOnce()
    throttle.watch(client)
    mods = Modifications()
    mods.watch(client)
    (first,) = await post_alerts(client, about(ident, "RDSFreeStorageLow"))
    row = await wait_done(client, first["id"])
    assert throttle.throttled == 1, "the describe after the change was not throttled"
    assert row["outcome"] == "succeeded", row
    assert row["result"]["after"]["allocated_gib"] == 125, row["result"]
    (effect,) = row["plan"]["effects"]
    assert effect["operation"] == "ModifyDBInstance" and effect["state"] == "done", effect
    await asyncio.sleep(1.0)
    (second,) = await post_alerts(client, about(ident, "RDSFreeStorageLow"))
    row = await wait_done(client, second["id"])
    assert row["outcome"] == "guardrail" and "6h" in row["error"], row
    assert len(mods.sent) == 1, mods.sent
    assert moto.describe(ident)["AllocatedStorage"] == 125


async def test_a_change_sent_before_a_crash_counts_as_made(
    moto: Moto,
) -> None:
    """A responder that died between sending ModifyDBInstance and journaling its outcome leaves the row
    `interrupted` with the effect journaled `started`: the change may have been made, and the 6 h guard counts
    it. (The row is journaled as the gate leaves it; a real SIGKILL mid-call is the same journal state.)"""
    ident = moto.instance(storage=100)
    client = await responder(moto, [grow("grow", "RDSFreeStorageLow")])
    journal = client.app[keys.JOURNAL]
    (crashed,) = await post_alerts(client, about(ident, "RDSFreeStorageHigh"))  # matches nothing: a row only
    effect = {
        "kind": "aws",
        "operation": "ModifyDBInstance",
        "region": REGION,
        "params": {"DBInstanceIdentifier": ident, "AllocatedStorage": 125},
        "state": "started",
    }
    await journal.store.run(_as_crashed_grow(crashed["id"], ident, effect))
    mods = Modifications()
    mods.watch(client)
    (second,) = await post_alerts(client, about(ident, "RDSFreeStorageLow"))
    row = await wait_done(client, second["id"])
    assert row["outcome"] == "guardrail" and "6h" in row["error"], row
    assert mods.sent == []


def _as_crashed_grow(action_id: int, ident: str, effect: dict[str, Any]) -> Callable[[Any], None]:
    def run(tx: Any) -> None:
        now = tx.now()
        tx.execute(
            "UPDATE pgwarden_actions SET playbook = 'grow', action = 'grow_storage', mode = 'enforce',"
            " target_key = ?, state = 'done', outcome = 'interrupted', plan = ?, started_at = ?,"
            " finished_at = ? WHERE id = ?",
            (f"rds:{REGION}/{ident}", json.dumps({"effects": [effect]}), now, now, action_id),
        )

    return run
