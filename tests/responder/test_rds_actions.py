"""scale_instance and grow_storage against a real moto server process.

moto applies every modification at once and models neither PendingModifiedValues nor the
`storage-optimization` status. Where a test needs those, it shapes the real DescribeDBInstances answer from
moto with a botocore `after-call` hook on the responder's own client, so the response still comes from moto
and goes through the responder's code unchanged. `stopped` is real: moto's StopDBInstance.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from devtools.motoserver import MotoServer
from responder import keys
from responder.playbooks.grow_storage import grown
from tests.responder.conftest import ClientFactory, ConfigFactory, alert, post_alerts, wait_done

LADDER = ["db.t3.medium", "db.r6g.large", "db.r6g.xlarge"]


def _config(make_config: ConfigFactory, moto: MotoServer, **overrides: Any) -> Any:
    scale = {
        "name": "scale",
        "match": {"alertname": "RDSCPUHigh"},
        "action": "scale_instance",
        "params": {"ladder": LADDER, "max_class": "db.r6g.xlarge"},
        "require_approval": False,
    }
    grow = {
        "name": "grow",
        "match": {"alertname": "RDSFreeStorageLow"},
        "action": "grow_storage",
        "params": {"increase_percent": 25, "max_allocated_gib": 1000},
    }
    scale.update(overrides.pop("scale", {}))
    grow.update(overrides.pop("grow", {}))
    return make_config(
        aws={"region": "us-east-1", "endpoint_url": moto.endpoint_url}, playbooks=[scale, grow], **overrides
    )


def _describe(rds_client: Any, identifier: str) -> dict[str, Any]:
    return dict(rds_client.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0])


def _shape(client: TestClient[web.Request, web.Application], **fields: Any) -> None:
    """Overlay fields on moto's DescribeDBInstances answers as the responder's client receives them."""

    def hook(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        for inst in parsed.get("DBInstances", []):
            inst.update(fields)

    rds = client.app[keys.RDS]
    assert rds is not None
    rds.client("us-east-1").meta.events.register("after-call.rds.DescribeDBInstances", hook)


async def _fire(
    client: TestClient[web.Request, web.Application], name: str, identifier: str, **labels: str
) -> dict[str, Any]:
    (d,) = await post_alerts(client, alert(name, dbidentifier=identifier, aws_region="us-east-1", **labels))
    return await wait_done(client, d["id"])


async def test_scale_one_step_up(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    ident = rds_instance("db.t3.medium")
    client = await client_for(_config(make_config, moto_server))
    row = await _fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "succeeded", row
    assert row["plan"]["from"] == "db.t3.medium" and row["plan"]["to"] == "db.r6g.large"
    assert row["result"]["before"]["class"] == "db.t3.medium"
    assert row["result"]["after"]["class"] == "db.r6g.large"
    assert _describe(rds_client, ident)["DBInstanceClass"] == "db.r6g.large"


async def test_scale_refuses_at_the_top_and_off_the_ladder(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    top = rds_instance("db.r6g.xlarge")
    client = await client_for(
        _config(make_config, moto_server, scale={"params": {"ladder": LADDER, "max_class": "db.r6g.large"}})
    )
    capped = rds_instance("db.r6g.large")
    row = await _fire(client, "RDSCPUHigh", capped)
    assert row["outcome"] == "guardrail" and "max_class" in row["error"]
    row = await _fire(client, "RDSCPUHigh", top)  # above max_class: never down either
    assert row["outcome"] == "guardrail"
    assert _describe(rds_client, top)["DBInstanceClass"] == "db.r6g.xlarge"
    assert _describe(rds_client, capped)["DBInstanceClass"] == "db.r6g.large"
    odd = rds_instance("db.m5.large")
    row = await _fire(client, "RDSCPUHigh", odd)
    assert row["outcome"] == "guardrail" and "not on the ladder" in row["error"]


async def test_scale_refuses_when_not_available(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    ident = rds_instance("db.t3.medium")
    rds_client.stop_db_instance(DBInstanceIdentifier=ident)
    client = await client_for(_config(make_config, moto_server))
    row = await _fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "guardrail" and "stopped" in row["error"]
    assert _describe(rds_client, ident)["DBInstanceClass"] == "db.t3.medium"


async def test_scale_refuses_with_pending_modifications(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    ident = rds_instance("db.t3.medium")
    client = await client_for(_config(make_config, moto_server))
    _shape(client, PendingModifiedValues={"AllocatedStorage": 500})
    row = await _fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "guardrail" and "pending modifications" in row["error"]
    assert _describe(rds_client, ident)["DBInstanceClass"] == "db.t3.medium"


async def test_scale_refuses_within_cooldown(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    ident = rds_instance("db.t3.medium")
    client = await client_for(_config(make_config, moto_server, scale={"cooldown": "6h"}))
    assert (await _fire(client, "RDSCPUHigh", ident))["outcome"] == "succeeded"
    row = await _fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "cooldown"
    assert _describe(rds_client, ident)["DBInstanceClass"] == "db.r6g.large"


async def test_scale_dry_run_changes_nothing(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    ident = rds_instance("db.t3.medium")
    client = await client_for(_config(make_config, moto_server, mode="dry-run"))
    row = await _fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "dry_run" and row["plan"]["to"] == "db.r6g.large"
    assert _describe(rds_client, ident)["DBInstanceClass"] == "db.t3.medium"


@pytest.mark.parametrize(("percent", "expected"), [(25, 125), (5, 110), (10, 110), (33.3, 134)])
def test_grown_sizes(percent: float, expected: int) -> None:
    assert grown(100, percent, 65536) == expected


def test_grown_caps() -> None:
    assert grown(100, 25, 120) == 120
    assert grown(60000, 25, 65536) == 65536


async def test_grow_storage_25_percent_then_refuses_within_6h(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    ident = rds_instance(storage=100)
    client = await client_for(_config(make_config, moto_server))
    row = await _fire(client, "RDSFreeStorageLow", ident)
    assert row["outcome"] == "succeeded", row
    assert row["plan"] == {"instance": ident, "field": "AllocatedStorage", "from": 100, "to": 125}
    assert _describe(rds_client, ident)["AllocatedStorage"] == 125
    row = await _fire(client, "RDSFreeStorageLow", ident)
    assert row["outcome"] == "guardrail" and "6h" in row["error"]
    assert _describe(rds_client, ident)["AllocatedStorage"] == 125


async def test_grow_storage_10_percent_floor(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    ident = rds_instance(storage=100)
    client = await client_for(_config(make_config, moto_server, grow={"params": {"increase_percent": 5}}))
    row = await _fire(client, "RDSFreeStorageLow", ident)
    assert row["plan"]["to"] == 110
    assert _describe(rds_client, ident)["AllocatedStorage"] == 110


async def test_grow_storage_refuses_after_4_changes_in_24h(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
    tmp_path: Any,
) -> None:
    ident = rds_instance(storage=100)
    config = _config(make_config, moto_server)
    client = await client_for(config)
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
    client = await client_for(config)
    row = await _fire(client, "RDSFreeStorageLow", ident)
    assert row["outcome"] == "guardrail" and "4 storage changes" in row["error"]
    assert _describe(rds_client, ident)["AllocatedStorage"] == 100


async def test_grow_storage_refuses_unless_available(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    ident = rds_instance(storage=100)
    client = await client_for(_config(make_config, moto_server))
    _shape(client, DBInstanceStatus="storage-optimization")
    row = await _fire(client, "RDSFreeStorageLow", ident)
    assert row["outcome"] == "guardrail" and "optimization" in row["error"]
    stopped = rds_instance(storage=100)
    rds_client.stop_db_instance(DBInstanceIdentifier=stopped)
    client2 = await client_for(_config(make_config, moto_server))
    row = await _fire(client2, "RDSFreeStorageLow", stopped)
    assert row["outcome"] == "guardrail" and "stopped" in row["error"]
    assert _describe(rds_client, ident)["AllocatedStorage"] == 100
    assert _describe(rds_client, stopped)["AllocatedStorage"] == 100


async def test_grow_storage_raises_the_autoscaling_ceiling(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    short = rds_instance(storage=100, MaxAllocatedStorage=105)
    roomy = rds_instance(storage=100, MaxAllocatedStorage=500)
    client = await client_for(_config(make_config, moto_server))
    row = await _fire(client, "RDSFreeStorageLow", short)
    assert row["outcome"] == "succeeded", row
    assert row["plan"] == {"instance": short, "field": "MaxAllocatedStorage", "from": 105, "to": 132}
    after = _describe(rds_client, short)
    assert after["MaxAllocatedStorage"] == 132 and after["AllocatedStorage"] == 100
    row = await _fire(client, "RDSFreeStorageLow", roomy)
    assert row["outcome"] == "guardrail" and "headroom" in row["error"]


async def test_rds_alert_without_dbidentifier_is_no_target(
    make_config: ConfigFactory, client_for: ClientFactory, moto_server: MotoServer
) -> None:
    client = await client_for(_config(make_config, moto_server))
    (d,) = await post_alerts(client, alert("RDSCPUHigh"))
    assert d["outcome"] == "no_target"
    (d,) = await post_alerts(client, alert("RDSCPUHigh", dbidentifier="bad id; rm -rf /"))
    assert d["outcome"] == "no_target"
