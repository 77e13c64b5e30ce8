"""The drill sweeper deletes an instance only when this journal proves it made it (issue 19, hole 1).

Every case runs against moto in server mode: the instances are real to it, and a deletion is a real
`DeleteDBInstance` that moto carries out. botocore's `before-call` events record each operation sent.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from devtools.motoserver import MotoServer
from responder import keys
from responder.aws import is_read
from responder.core import RdsTarget
from responder.decision import Decision, ScheduleTrigger
from responder.drills.sweeper import DrillSweeper
from responder.outcomes import Outcome, State
from tests.support.clock import TEST_NOW
from tests.support.drills import REGION, all_instances, production, tagged_instance
from tests.support.responder import ClientFactory, ConfigFactory

Client = TestClient[web.Request, web.Application]
DAY = 86400


def _drill_schedule(ident: str, mode: str) -> dict[str, Any]:
    return {
        "name": "weekly-restore-test",
        "cron": "0 3 * * 0",
        "action": "restore_drill",
        "mode": mode,
        "target": {"dbidentifier": ident, "aws_region": REGION},
        "params": {
            "source": "latest_snapshot",
            "connect": {"dsn_env": "PGWARDEN_TEST_UNSET_DSN"},
            "checks": [{"name": "one", "sql": "SELECT 1", "expect": {"min": 1}}],
        },
    }


SweepClient = Callable[[str, str], Awaitable[Client]]


@pytest.fixture
def sweep_client(
    make_config: ConfigFactory, client_for: ClientFactory, moto_server: MotoServer
) -> SweepClient:
    async def make(ident: str, mode: str) -> Client:
        config = make_config(
            aws={"region": REGION, "endpoint_url": moto_server.endpoint_url},
            playbooks=[],
            schedules=[_drill_schedule(ident, mode)],
        )
        return await client_for(config)

    return make


BothModes = Callable[[], Awaitable[tuple[str, Client, Client]]]


@pytest.fixture
def both_modes(sweep_client: SweepClient, rds_client: Any) -> BothModes:
    """A production instance, and an app sweeping it in enforce and one in dry-run."""

    async def make() -> tuple[str, Client, Client]:
        ident = production(rds_client)
        return ident, await sweep_client(ident, "enforce"), await sweep_client(ident, "dry-run")

    return make


def _mutations(client: Client) -> list[str]:
    """Every mutating operation the app's RDS client sends from now on (appended as it sends them)."""
    sent: list[str] = []
    rds = client.app[keys.RDS]
    assert rds is not None

    def record(model: Any, **_: Any) -> None:
        if not is_read(model.name):
            sent.append(model.name)

    rds.client(REGION).meta.events.register("before-call.rds.*", record)
    return sent


def _sweeper(client: Client) -> DrillSweeper:
    sweeper = client.app[keys.DRILLS].sweeper
    assert isinstance(sweeper, DrillSweeper)
    return sweeper


def _names(rds_client: Any) -> set[str]:
    return {
        i["DBInstanceIdentifier"] for i in all_instances(rds_client) if i["DBInstanceStatus"] != "deleting"
    }


async def _journal_drill(
    client: Client,
    ident: str,
    *,
    mode: str = "enforce",
    restored: str | None,
    done: bool,
    action: str = "restore_drill",
) -> int:
    """A journal row as a drill leaves it: decided, (maybe) its restore journaled, (maybe) finished."""
    journal = client.app[keys.JOURNAL]
    trigger = ScheduleTrigger(
        "weekly-restore-test", "2026-11-22T03:00:00.000Z", {"schedule": "weekly-restore-test"}
    )
    target = RdsTarget(ident, REGION)  # described `rds {REGION}/{ident}`, keyed `rds:{REGION}/{ident}`
    (recorded,) = await journal.record(
        [
            Decision(
                trigger,
                State.QUEUED,
                playbook="weekly-restore-test",
                action=action,
                mode=mode,
                target=target,
                dedup_key=f"test|{uuid.uuid4().hex}",
            )
        ]
    )
    if restored is not None:
        effect = {
            "kind": "aws",
            "operation": "RestoreDBInstanceFromDBSnapshot",
            "region": REGION,
            "params": {"DBInstanceIdentifier": restored},
            "state": "done",
        }
        await journal.set_plan(recorded.action_id, {"drill_instance": restored, "effects": [effect]})
    if done:
        await journal.finish(recorded.action_id, Outcome.SUCCEEDED)
    return recorded.action_id


# ---- the reproductions from the review -------------------------------------------------------------------------


async def test_dry_run_start_up_deletes_neither_an_unexpiring_nor_an_unknown_drill_tag(
    sweep_client: SweepClient, rds_client: Any
) -> None:
    ident = production(rds_client)
    billing = tagged_instance(rds_client, f"billing-{uuid.uuid4().hex[:6]}", {"pgwarden:drill": "1"})
    orders = tagged_instance(
        rds_client, f"orders-{uuid.uuid4().hex[:6]}", {"pgwarden:drill": "999", "pgwarden:expires": "1"}
    )
    client = await sweep_client(ident, "dry-run")  # start-up sweeps
    sent = _mutations(client)
    assert await _sweeper(client).sweep() == []
    assert {billing, orders, ident} <= _names(rds_client)
    assert sent == []
    text = await (await client.get("/metrics")).text()
    (kept,) = [
        line for line in text.splitlines() if line.startswith('pgwarden_drill_instances{state="kept"}')
    ]
    assert float(kept.split()[-1]) >= 2  # moto is shared: other tests' instances may be kept too


async def test_enforce_keeps_an_instance_tagged_with_a_finished_drills_id(
    sweep_client: SweepClient, rds_client: Any
) -> None:
    ident = production(rds_client)
    client = await sweep_client(ident, "enforce")
    finished = await _journal_drill(client, ident, restored=f"{ident}-drill-202611220300", done=True)
    payments = tagged_instance(
        rds_client,
        f"payments-{uuid.uuid4().hex[:6]}",
        {"pgwarden:drill": str(finished), "pgwarden:expires": str(int(TEST_NOW.timestamp()) + 30 * DAY)},
    )
    sent = _mutations(client)
    assert await _sweeper(client).sweep() == []
    assert payments in _names(rds_client) and sent == []


# ---- every combination of pgwarden tags on instances the journal did not make ------------------------------------


async def test_no_sweep_in_any_mode_deletes_an_instance_this_journal_did_not_make(
    both_modes: BothModes, rds_client: Any
) -> None:
    ident, enforce, dry = await both_modes()
    finished = await _journal_drill(enforce, ident, restored=f"{ident}-drill-202611220300", done=True)
    never_restored = await _journal_drill(enforce, ident, restored=None, done=True)
    dry_drill = await _journal_drill(
        enforce, ident, mode="dry-run", restored=f"{ident}-drill-202611220400", done=True
    )
    not_a_drill = await _journal_drill(
        enforce, ident, restored=f"{ident}-drill-202611220500", done=True, action="recover"
    )
    now = int(TEST_NOW.timestamp())
    ids = {
        "finished drill": str(finished),
        "never restored": str(never_restored),
        "dry-run drill": str(dry_drill),
        "not a drill": str(not_a_drill),
        "another journal": "987654",
        "garbage": "1; DROP",
    }
    expiries = {
        "missing": None,
        "expired": str(now - DAY),
        "future": str(now + DAY),
        "garbage": "soon",
        "nan": "nan",
    }
    made: list[str] = []
    for n, (action_id, expires) in enumerate(itertools.product(ids.values(), expiries.values())):
        tags = {"pgwarden:drill": action_id}
        if expires is not None:
            tags["pgwarden:expires"] = expires
        # Half are named like a drill of this production instance (the name alone proves nothing either).
        name = f"{ident}-drill-2026112{n % 10}0{n % 6}00" if n % 2 else f"prodlike-{uuid.uuid4().hex[:6]}-{n}"
        made.append(tagged_instance(rds_client, name, tags))
    for client in (enforce, dry):
        sent = _mutations(client)
        assert await _sweeper(client).sweep() == []
        assert sent == []
    assert set(made) | {ident} <= _names(rds_client)


# ---- what it does delete ---------------------------------------------------------------------------------------


async def test_a_leaked_drill_this_journal_made_is_planned_in_dry_run_and_deleted_in_enforce(
    both_modes: BothModes, rds_client: Any
) -> None:
    ident, enforce, dry = await both_modes()
    drill = f"{ident}-drill-202611220300"
    action_id = await _journal_drill(enforce, ident, restored=drill, done=False)
    expired = str(int(TEST_NOW.timestamp()) - 60)  # the sweeper reads the app's clock
    tagged_instance(rds_client, drill, {"pgwarden:drill": str(action_id), "pgwarden:expires": expired})
    sent = _mutations(dry)
    assert await _sweeper(dry).sweep() == []  # every drill playbook is in dry-run: plan only
    assert sent == [] and drill in _names(rds_client)
    row = await enforce.app[keys.JOURNAL].get(action_id)
    assert row is not None
    assert row.plan is not None
    planned = [e for e in row.plan["effects"] if e["operation"] == "DeleteDBInstance"]
    assert [e["state"] for e in planned] == ["dry-run"]
    sent = _mutations(enforce)
    assert await _sweeper(enforce).sweep() == [drill]
    assert sent == ["DeleteDBInstance"] and drill not in _names(rds_client)
    row = await enforce.app[keys.JOURNAL].get(action_id)
    assert row is not None
    assert row.plan is not None
    deletes = [e for e in row.plan["effects"] if e["operation"] == "DeleteDBInstance"]
    assert [e["state"] for e in deletes] == ["dry-run", "done"]
