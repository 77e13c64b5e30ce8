"""scale_instance against a real moto server process (see `rds` for how answers are shaped)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from devtools.motoserver import MotoServer
from tests.responder.conftest import ClientFactory, ConfigFactory
from tests.responder.playbooks.rds import LADDER, describe_instance, fire, rds_config, shape_answers


async def test_scale_one_step_up(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    ident = rds_instance("db.t3.medium")
    client = await client_for(rds_config(make_config, moto_server))
    row = await fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "succeeded", row
    assert row["plan"]["from"] == "db.t3.medium" and row["plan"]["to"] == "db.r6g.large"
    assert row["result"]["before"]["class"] == "db.t3.medium"
    assert row["result"]["after"]["class"] == "db.r6g.large"
    assert describe_instance(rds_client, ident)["DBInstanceClass"] == "db.r6g.large"


async def test_scale_refuses_at_the_top_and_off_the_ladder(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    top = rds_instance("db.r6g.xlarge")
    client = await client_for(
        rds_config(
            make_config, moto_server, scale={"params": {"ladder": LADDER, "max_class": "db.r6g.large"}}
        )
    )
    capped = rds_instance("db.r6g.large")
    row = await fire(client, "RDSCPUHigh", capped)
    assert row["outcome"] == "guardrail" and "max_class" in row["error"]
    row = await fire(client, "RDSCPUHigh", top)  # above max_class: never down either
    assert row["outcome"] == "guardrail"
    assert describe_instance(rds_client, top)["DBInstanceClass"] == "db.r6g.xlarge"
    assert describe_instance(rds_client, capped)["DBInstanceClass"] == "db.r6g.large"
    odd = rds_instance("db.m5.large")
    row = await fire(client, "RDSCPUHigh", odd)
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
    client = await client_for(rds_config(make_config, moto_server))
    row = await fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "guardrail" and "stopped" in row["error"]
    assert describe_instance(rds_client, ident)["DBInstanceClass"] == "db.t3.medium"


async def test_scale_refuses_with_pending_modifications(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    ident = rds_instance("db.t3.medium")
    client = await client_for(rds_config(make_config, moto_server))
    shape_answers(client, PendingModifiedValues={"AllocatedStorage": 500})
    row = await fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "guardrail" and "pending modifications" in row["error"]
    assert describe_instance(rds_client, ident)["DBInstanceClass"] == "db.t3.medium"


async def test_scale_refuses_within_cooldown(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    ident = rds_instance("db.t3.medium")
    client = await client_for(rds_config(make_config, moto_server, scale={"cooldown": "6h"}))
    assert (await fire(client, "RDSCPUHigh", ident))["outcome"] == "succeeded"
    row = await fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "cooldown"
    assert describe_instance(rds_client, ident)["DBInstanceClass"] == "db.r6g.large"


async def test_scale_dry_run_changes_nothing(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
) -> None:
    ident = rds_instance("db.t3.medium")
    client = await client_for(rds_config(make_config, moto_server, mode="dry-run"))
    row = await fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "dry_run" and row["plan"]["to"] == "db.r6g.large"
    assert describe_instance(rds_client, ident)["DBInstanceClass"] == "db.t3.medium"
