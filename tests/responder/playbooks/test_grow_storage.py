"""grow_storage against a real moto server process (see `rds` for how answers are shaped)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

from responder.core import GuardrailRefused
from responder.playbooks.grow_storage import grown
from tests.responder.playbooks.rds import Moto, fire, shape_answers


@pytest.mark.parametrize(("percent", "expected"), [(25, 125), (5, 110), (10, 110), (33.3, 134)])
def test_grown_sizes(percent: float, expected: int) -> None:
    assert grown(100, percent, 65536) == expected


def test_grown_caps() -> None:
    assert grown(100, 25, 120) == 120
    assert grown(59000, 25, 65536) == 65536


async def test_grow_storage_25_percent_then_refuses_within_6h(moto: Moto) -> None:
    ident = moto.instance(storage=100)
    client = await moto.responder()
    row = await fire(client, "RDSFreeStorageLow", ident)
    assert row["outcome"] == "succeeded", row
    (effect,) = row["plan"].pop("effects")
    assert row["plan"] == {"instance": ident, "field": "AllocatedStorage", "from": 100, "to": 125}
    assert effect["operation"] == "ModifyDBInstance" and effect["state"] == "done"
    assert effect["params"] == {
        "DBInstanceIdentifier": ident,
        "ApplyImmediately": True,
        "AllocatedStorage": 125,
    }
    assert moto.describe(ident)["AllocatedStorage"] == 125
    row = await fire(client, "RDSFreeStorageLow", ident)
    assert row["outcome"] == "guardrail" and "6h" in row["error"]
    assert moto.describe(ident)["AllocatedStorage"] == 125


async def test_grow_storage_10_percent_floor(moto: Moto) -> None:
    ident = moto.instance(storage=100)
    client = await moto.responder(grow={"params": {"increase_percent": 5}})
    row = await fire(client, "RDSFreeStorageLow", ident)
    assert row["plan"]["to"] == 110
    assert moto.describe(ident)["AllocatedStorage"] == 110


async def test_grow_storage_refuses_after_4_changes_in_24h(moto: Moto, tmp_path: Any) -> None:
    ident = moto.instance(storage=100)
    config = moto.config()
    client = await moto.client_for(config)
    await client.close()  # creates the journal; now write four earlier changes (7h..22h ago) into it
    db = sqlite3.connect(tmp_path / "journal.db")
    now = time.time()
    for hours in (7, 12, 17, 22):
        db.execute(
            "INSERT INTO pgwarden_actions (created_at, updated_at, playbook, action, alertname, fingerprint,"
            " starts_at, alert_status, target_key, state, outcome, started_at, finished_at) VALUES"
            " (?, ?, 'grow', 'grow_storage', 'RDSFreeStorageLow', ?, 'x', 'firing', ?, 'done', 'succeeded', ?, ?)",
            (now, now, f"old{hours}", f"rds:us-east-1/{ident}", now - hours * 3600, now - hours * 3600),
        )
    db.commit()
    db.close()
    client = await moto.client_for(config)
    row = await fire(client, "RDSFreeStorageLow", ident)
    assert row["outcome"] == "guardrail" and "4 storage changes" in row["error"]
    assert moto.describe(ident)["AllocatedStorage"] == 100


async def test_grow_storage_refuses_unless_available(moto: Moto) -> None:
    ident = moto.instance(storage=100)
    client = await moto.responder()
    shape_answers(client, DBInstanceStatus="storage-optimization")
    row = await fire(client, "RDSFreeStorageLow", ident)
    assert row["outcome"] == "guardrail" and "optimization" in row["error"]
    stopped = moto.instance(storage=100)
    moto.rds_client.stop_db_instance(DBInstanceIdentifier=stopped)
    client2 = await moto.responder()
    row = await fire(client2, "RDSFreeStorageLow", stopped)
    assert row["outcome"] == "guardrail" and "stopped" in row["error"]
    assert moto.describe(ident)["AllocatedStorage"] == 100
    assert moto.describe(stopped)["AllocatedStorage"] == 100


async def test_grow_storage_raises_the_autoscaling_ceiling(moto: Moto) -> None:
    short = moto.instance(storage=100, MaxAllocatedStorage=105)
    roomy = moto.instance(storage=100, MaxAllocatedStorage=500)
    client = await moto.responder()
    row = await fire(client, "RDSFreeStorageLow", short)
    assert row["outcome"] == "succeeded", row
    assert row["plan"].pop("effects")[0]["params"]["MaxAllocatedStorage"] == 132
    assert row["plan"] == {"instance": short, "field": "MaxAllocatedStorage", "from": 105, "to": 132}
    after = moto.describe(short)
    assert after["MaxAllocatedStorage"] == 132 and after["AllocatedStorage"] == 100
    row = await fire(client, "RDSFreeStorageLow", roomy)
    assert row["outcome"] == "guardrail" and "headroom" in row["error"]


def test_grown_refuses_below_rds_minimum_step() -> None:
    for current, cap in ((100, 105), (65000, 65536), (100, 100)):
        with pytest.raises(GuardrailRefused):
            grown(current, 25, cap)
    assert grown(100, 25, 110) == 110


async def test_grow_storage_refuses_when_the_cap_leaves_less_than_10_percent(moto: Moto) -> None:
    ident = moto.instance(storage=100)
    grow = {"params": {"increase_percent": 25, "max_allocated_gib": 105}}
    client = await moto.responder(grow=grow)
    row = await fire(client, "RDSFreeStorageLow", ident)
    assert row["outcome"] == "guardrail" and "minimum increase of 10% (100 -> 110 GiB)" in row["error"], row
    assert moto.describe(ident)["AllocatedStorage"] == 100


async def test_rds_identifiers_are_one_target_whatever_their_case(moto: Moto) -> None:
    ident = moto.instance(storage=100)
    client = await moto.responder()
    row = await fire(client, "RDSFreeStorageLow", ident)
    assert row["outcome"] == "succeeded" and row["target"] == f"rds us-east-1/{ident}", row
    row = await fire(client, "RDSFreeStorageLow", ident.upper())
    assert row["outcome"] == "guardrail" and "6h" in row["error"], row  # the same instance's storage history
    assert moto.describe(ident)["AllocatedStorage"] == 125
