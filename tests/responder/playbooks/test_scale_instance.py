"""scale_instance against a real moto server process (see `rds` for how answers are shaped)."""

from __future__ import annotations

from tests.responder.playbooks.rds import LADDER, Moto, fire, shape_answers


async def test_scale_one_step_up(moto: Moto) -> None:
    ident = moto.instance("db.t3.medium")
    client = await moto.responder()
    row = await fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "succeeded", row
    assert row["plan"]["from"] == "db.t3.medium" and row["plan"]["to"] == "db.r6g.large"
    assert row["result"]["before"]["class"] == "db.t3.medium"
    assert row["result"]["after"]["class"] == "db.r6g.large"
    assert moto.describe(ident)["DBInstanceClass"] == "db.r6g.large"


async def test_scale_refuses_at_the_top_and_off_the_ladder(moto: Moto) -> None:
    top = moto.instance("db.r6g.xlarge")
    client = await moto.responder(scale={"params": {"ladder": LADDER, "max_class": "db.r6g.large"}})
    capped = moto.instance("db.r6g.large")
    row = await fire(client, "RDSCPUHigh", capped)
    assert row["outcome"] == "guardrail" and "max_class" in row["error"]
    row = await fire(client, "RDSCPUHigh", top)  # above max_class: never down either
    assert row["outcome"] == "guardrail"
    assert moto.describe(top)["DBInstanceClass"] == "db.r6g.xlarge"
    assert moto.describe(capped)["DBInstanceClass"] == "db.r6g.large"
    odd = moto.instance("db.m5.large")
    row = await fire(client, "RDSCPUHigh", odd)
    assert row["outcome"] == "guardrail" and "not on the ladder" in row["error"]


async def test_scale_refuses_when_not_available(moto: Moto) -> None:
    ident = moto.instance("db.t3.medium")
    moto.rds_client.stop_db_instance(DBInstanceIdentifier=ident)
    client = await moto.responder()
    row = await fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "guardrail" and "stopped" in row["error"]
    assert moto.describe(ident)["DBInstanceClass"] == "db.t3.medium"


async def test_scale_refuses_with_pending_modifications(moto: Moto) -> None:
    ident = moto.instance("db.t3.medium")
    client = await moto.responder()
    shape_answers(client, PendingModifiedValues={"AllocatedStorage": 500})
    row = await fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "guardrail" and "pending modifications" in row["error"]
    assert moto.describe(ident)["DBInstanceClass"] == "db.t3.medium"


async def test_scale_refuses_within_cooldown(moto: Moto) -> None:
    ident = moto.instance("db.t3.medium")
    client = await moto.responder(scale={"cooldown": "6h"})
    assert (await fire(client, "RDSCPUHigh", ident))["outcome"] == "succeeded"
    row = await fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "cooldown"
    assert moto.describe(ident)["DBInstanceClass"] == "db.r6g.large"


async def test_scale_dry_run_changes_nothing(moto: Moto) -> None:
    ident = moto.instance("db.t3.medium")
    client = await moto.responder(mode="dry-run")
    row = await fire(client, "RDSCPUHigh", ident)
    assert row["outcome"] == "dry_run" and row["plan"]["to"] == "db.r6g.large"
    assert moto.describe(ident)["DBInstanceClass"] == "db.t3.medium"
