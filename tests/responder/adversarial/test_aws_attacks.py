"""What pgwarden changes on RDS, under attack: lookalike drill tags, a same-named instance in another region, an
instance replaced by someone else between two runs, AWS failing in the middle of the swap, a resume.

Everything runs against moto in server mode (the instances are real to it, a deletion or a rename is really
made); AWS failures are injected with botocore's own events on the responder's real clients.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from botocore.exceptions import ClientError

from devtools.motoserver import MotoServer
from devtools.pgserver import PostgresServer
from responder import keys
from responder.aws import RdsApi, is_read
from responder.core import RdsTarget
from responder.decision import Decision, ScheduleTrigger
from responder.drills.sweeper import DrillSweeper
from responder.outcomes import Outcome, State
from tests.responder.approvals.people import ALICE, bearer
from tests.responder.playbooks.conftest import moto
from tests.responder.playbooks.rds import Moto
from tests.responder.playbooks.test_restore_drill import DrillClient, drill_client, run_drill
from tests.support.clock import TEST_NOW
from tests.support.drills import REGION, drill_database, production, tagged_instance
from tests.support.recover import (
    instance_names,
    latest_restorable,
    recovery_config,
    recovery_row,
    run_recover,
)
from tests.support.responder import ClientFactory, ConfigFactory
from tests.support.webhook import alert, post_alerts, wait_done

__all__ = ["drill_client", "moto"]  # the playbook tests' fixtures

Client = TestClient[web.Request, web.Application]
OTHER_REGION = "eu-west-1"
DAY = 86400


# ---- the drill sweeper ----------------------------------------------------------------------------------------


def _drill_schedule(name: str, ident: str, region: str) -> dict[str, Any]:
    return {
        "name": name,
        "cron": "0 3 * * 0",
        "action": "restore_drill",
        "mode": "enforce",
        "target": {"dbidentifier": ident, "aws_region": region},
        "params": {
            "source": "latest_snapshot",
            "connect": {"dsn_env": "PGWARDEN_TEST_UNSET_DSN"},
            "checks": [{"name": "one", "sql": "SELECT 1", "expect": {"min": 1}}],
        },
    }


SweepApp = Callable[[str], Awaitable[Client]]


@pytest.fixture
def sweep_app(make_config: ConfigFactory, client_for: ClientFactory, moto_server: MotoServer) -> SweepApp:
    """An app in enforce mode with drills of `ident` in two regions: its sweeper sweeps both."""

    async def make(ident: str) -> Client:
        config = make_config(
            aws={"region": REGION, "endpoint_url": moto_server.endpoint_url},
            playbooks=[],
            schedules=[
                _drill_schedule("weekly-restore-test", ident, REGION),
                _drill_schedule("weekly-restore-test-eu", ident, OTHER_REGION),
            ],
        )
        return await client_for(config)

    return make


def _sweeper(client: Client) -> DrillSweeper:
    sweeper = client.app[keys.DRILLS].sweeper
    assert isinstance(sweeper, DrillSweeper)
    assert OTHER_REGION in sweeper.regions and REGION in sweeper.regions
    return sweeper


def _mutations(client: Client, *regions: str) -> list[tuple[str, str]]:
    """Every mutating (operation, region) the app's RDS clients send from now on."""
    sent: list[tuple[str, str]] = []
    rds = client.app[keys.RDS]
    assert rds is not None
    for region in regions:

        def record(model: Any, region: str = region, **_: Any) -> None:
            if not is_read(model.name):
                sent.append((model.name, region))

        rds.client(region).meta.events.register("before-call.rds.*", record)
    return sent


async def _journal_drill(client: Client, ident: str, restored: str, region: str, *, done: bool) -> int:
    """A drill's journal row whose gate journaled (in enforce mode) the restore of `restored` in `region`."""
    journal = client.app[keys.JOURNAL]
    trigger = ScheduleTrigger("weekly-restore-test", "2026-11-22T03:00:00.000Z", {})
    (recorded,) = await journal.record(
        [
            Decision(
                trigger,
                State.QUEUED,
                playbook="weekly-restore-test",
                action="restore_drill",
                mode="enforce",
                target=RdsTarget(ident, region),
                dedup_key=f"test|{uuid.uuid4().hex}",
            )
        ]
    )
    effect = {
        "kind": "aws",
        "operation": "RestoreDBInstanceFromDBSnapshot",
        "region": region,
        "params": {"DBInstanceIdentifier": restored},
        "state": "done",
    }
    await journal.set_plan(
        recorded.action_id, {"drill_instance": restored, "region": region, "effects": [effect]}
    )
    if done:
        await journal.finish(recorded.action_id, Outcome.SUCCEEDED)
    return recorded.action_id


def _alive(client: Any) -> set[str]:
    pages = client.get_paginator("describe_db_instances").paginate()
    return {
        i["DBInstanceIdentifier"]
        for page in pages
        for i in page["DBInstances"]
        if i["DBInstanceStatus"] != "deleting"
    }


async def test_tags_that_only_look_like_a_drills_are_never_swept(
    sweep_app: SweepApp, rds_client: Any
) -> None:
    """Each instance has exactly the name its drill row restored, expired, the row finished: only the tag is off
    (its key's case, whitespace, a prefix or suffix; a value that parses as the id but is not it; "false")."""
    ident = production(rds_client)
    client = await sweep_app(ident)
    expired = str(int(TEST_NOW.timestamp()) - DAY)

    def variants(action_id: int) -> list[dict[str, str]]:
        n = str(action_id)
        return [
            {"PGWARDEN:DRILL": n},
            {"pgwarden:Drill": n},
            {"pgwarden:drill ": n},
            {" pgwarden:drill": n},
            {"x-pgwarden:drill": n},
            {"pgwarden:drill-id": n},
            {"pgwarden:drill": f" {n}"},
            {"pgwarden:drill": f"{n} "},
            {"pgwarden:drill": f"+{n}"},
            {"pgwarden:drill": f"0{n}"},
            {"pgwarden:drill": f"{n}.0"},
            {"pgwarden:drill": "false"},
            {"pgwarden:drill": "true"},
        ]

    made: list[str] = []
    for n in range(len(variants(0))):
        name = f"{ident}-drill-20261122{n:04d}"
        action_id = await _journal_drill(client, ident, name, REGION, done=True)
        tags = {**variants(action_id)[n], "pgwarden:expires": expired}
        made.append(tagged_instance(rds_client, name, tags))
    sent = _mutations(client, REGION, OTHER_REGION)
    assert await _sweeper(client).sweep() == []
    assert sent == []
    assert set(made) <= _alive(rds_client)


async def test_a_drill_named_the_same_in_another_region_is_not_swept(
    sweep_app: SweepApp, rds_client: Any, moto_server: MotoServer
) -> None:
    """Row N of this journal restored `<id>-drill-<stamp>` in us-east-1; in eu-west-1 another responder (another
    journal, its own row N) runs a drill of an instance with the same name, started the same minute. This
    journal's row never restored anything in eu-west-1: that drill is not its to delete."""
    ident = production(rds_client)
    client = await sweep_app(ident)
    drill = f"{ident}-drill-202611220300"
    action_id = await _journal_drill(client, ident, drill, REGION, done=True)
    other = boto3.client("rds", region_name=OTHER_REGION, endpoint_url=moto_server.endpoint_url)
    tags = {"pgwarden:drill": str(action_id), "pgwarden:expires": str(int(TEST_NOW.timestamp()) + DAY)}
    tagged_instance(other, drill, tags)
    sent = _mutations(client, REGION, OTHER_REGION)
    assert await _sweeper(client).sweep() == []
    assert sent == []
    assert drill in _alive(other)


async def test_the_same_drill_in_its_own_region_is_still_swept(
    sweep_app: SweepApp, rds_client: Any, moto_server: MotoServer
) -> None:
    """The control of the previous attack: the drill this row restored, in its region, finished, is deleted,
    and the same-named one in the other region is left alone."""
    ident = production(rds_client)
    client = await sweep_app(ident)
    drill = f"{ident}-drill-202611220300"
    action_id = await _journal_drill(client, ident, drill, REGION, done=True)
    tags = {"pgwarden:drill": str(action_id), "pgwarden:expires": str(int(TEST_NOW.timestamp()) + DAY)}
    other = boto3.client("rds", region_name=OTHER_REGION, endpoint_url=moto_server.endpoint_url)
    tagged_instance(other, drill, tags)
    tagged_instance(rds_client, drill, tags)
    sent = _mutations(client, REGION, OTHER_REGION)
    assert await _sweeper(client).sweep() == [drill]
    assert sent == [("DeleteDBInstance", REGION)]
    assert drill in _alive(other) and drill not in _alive(rds_client)


# ---- recover ------------------------------------------------------------------------------------------------------


@pytest.fixture
def drill_db(pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from drill_database(pg_server, monkeypatch)


@pytest.fixture
def setup(
    tmp_path: Path, moto_server: MotoServer, rds_client: Any, pg_server: PostgresServer, drill_db: str
) -> tuple[str, Path, str]:
    ident = production(rds_client)
    return ident, recovery_config(tmp_path, moto_server, pg_server), latest_restorable(rds_client, ident)


def _recovered(ident: str, to: str) -> str:
    return f"{ident}-recovery-{to[:10].replace('-', '')}"


Hook = Callable[..., None]


@pytest.fixture
def rds_events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Hook]]:
    """(event, handler) pairs, registered on every RDS client `recover` makes from then on (each run makes its
    own clients): what a test appends here applies to the next run."""
    handlers: list[tuple[str, Hook]] = []
    original = RdsApi.client

    def client(self: RdsApi, region: str | None = None) -> Any:
        made = original(self, region)
        for n, (event, handler) in enumerate(handlers):
            made.meta.events.register(event, handler, unique_id=f"test-attack-{n}")
        return made

    monkeypatch.setattr(RdsApi, "client", client)
    return handlers


def _renames(handlers: list[tuple[str, Hook]]) -> list[tuple[str, str]]:
    """The renames `recover` sends (old, new), in order, from now on."""
    renames: list[tuple[str, str]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        body = params.get("body") or {}
        if "NewDBInstanceIdentifier" in body:
            renames.append((body["DBInstanceIdentifier"], body["NewDBInstanceIdentifier"]))

    handlers.append(("before-call.rds.ModifyDBInstance", record))
    return renames


def _fail_rename(handlers: list[tuple[str, Hook]], nth: int, code: str, status: int, *, made: bool) -> None:
    """The `nth` rename fails with AWS error `code` (HTTP `status`): before RDS makes it (throttled), or, with
    `made`, after RDS made it (its answer lost to a 5xx)."""
    seen: list[str] = []

    def error() -> ClientError:
        answer = {
            "Error": {"Code": code, "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return ClientError(answer, "ModifyDBInstance")  # type: ignore[arg-type]

    def before(model: Any, params: dict[str, Any], **_: Any) -> None:
        if "NewDBInstanceIdentifier" not in (params.get("body") or {}):
            seen.append("modify")
            return
        seen.append("rename")
        if seen.count("rename") == nth and not made:
            raise error()

    def after(**_: Any) -> None:
        if seen and seen[-1] == "rename" and seen.count("rename") == nth and made:
            seen.append("failed")
            raise error()

    handlers.append(("before-call.rds.ModifyDBInstance", before))
    handlers.append(("after-call.rds.ModifyDBInstance", after))


def _hooks(tmp_path: Path) -> list[str]:
    log = tmp_path / "hooks.log"
    return log.read_text().split("\n")[:-1] if log.exists() else []


@pytest.mark.parametrize(
    ("nth", "code", "status", "made", "sends"),
    [
        (1, "ThrottlingException", 400, False, (2, 1)),  # production not renamed yet: sent again
        (1, "InternalFailure", 500, True, (1, 1)),  # production renamed, the answer lost: not sent again
        (2, "RequestLimitExceeded", 400, False, (1, 2)),  # the recovered instance not renamed yet
        (2, "ServiceUnavailable", 503, True, (1, 1)),  # both renamed, the second answer lost
    ],
)
def test_aws_failing_mid_swap_then_resume_renames_each_once(
    tmp_path: Path,
    rds_client: Any,
    setup: tuple[str, Path, str],
    rds_events: list[tuple[str, Hook]],
    nth: int,
    code: str,
    status: int,
    made: bool,
    sends: tuple[int, int],
) -> None:
    """Each rename is sent again only when AWS refused it: one that was made is never made twice."""
    ident, path, to = setup
    recovered, old = _recovered(ident, to), f"{ident}-old"
    renames = _renames(rds_events)
    _fail_rename(rds_events, nth, code, status, made=made)
    code_, out = run_recover(path, "--instance", ident, "--to", to, "--swap", "--yes")
    assert code_ == 1, out
    assert recovery_row(tmp_path, 1)["outcome"] == "failed"
    rds_events.clear()  # AWS is well again
    renames_after = _renames(rds_events)
    code_, out = run_recover(path, "--resume", "1", "--swap")  # no --yes: typed, not remembered
    assert code_ == 1 and "not confirmed; nothing swapped" in out, out
    code_, out = run_recover(path, "--resume", "1", "--swap", "--yes")
    assert code_ == 0, out
    assert instance_names(rds_client, ident) == {ident, old}
    sent = renames + renames_after
    assert (sent.count((ident, old)), sent.count((recovered, ident))) == sends
    assert len(sent) == sum(sends)
    now = rds_client.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    tags = {t["Key"]: t["Value"] for t in now["TagList"]}
    assert tags.get("pgwarden:recovery") == "1"  # the recovered instance is production now
    row = recovery_row(tmp_path, 1)
    assert row["outcome"] == "succeeded" and "swap" in row["plan"]["steps"]
    assert _hooks(tmp_path).count(f"maintenance_on {ident}") == 1
    assert _hooks(tmp_path).count(f"maintenance_off {ident}") == 1


@pytest.mark.parametrize(
    ("first", "code", "said"),
    [
        # unswapped: the settings step (a ModifyDBInstance of the recovered instance) meets the gate first
        ((), 1, "is not tagged pgwarden:recovery=1"),
        # swap asked but not confirmed: settings and comparison are done, the swap's pre-checks must see it
        (("--swap",), 2, "is not tagged pgwarden:recovery=1: not this decision's; nothing swapped"),
    ],
)
def test_a_recovered_instance_replaced_by_someone_else_is_not_swapped_in(
    tmp_path: Path,
    rds_client: Any,
    setup: tuple[str, Path, str],
    rds_events: list[tuple[str, Hook]],
    first: tuple[str, ...],
    code: int,
    said: str,
) -> None:
    """The recovery stopped before its swap; then its instance was deleted and another one made with its name.
    A later `--resume 1 --swap --yes` must refuse before any hook or rename: the gate refuses the rename of
    the impostor, but only after production has been renamed away."""
    ident, path, to = setup
    recovered = _recovered(ident, to)
    first_code, out = run_recover(path, "--instance", ident, "--to", to, *first)
    assert first_code == (1 if first else 0), out
    rds_client.delete_db_instance(DBInstanceIdentifier=recovered, SkipFinalSnapshot=True)
    tagged_instance(rds_client, recovered, {"owner": "someone-else"})
    renames = _renames(rds_events)
    code_, out = run_recover(path, "--resume", "1", "--swap", "--yes")
    assert code_ == code, out
    assert said in out, out
    assert renames == []
    assert _hooks(tmp_path) == []
    assert instance_names(rds_client, ident) == {ident, recovered}
    impostor = rds_client.describe_db_instances(DBInstanceIdentifier=recovered)["DBInstances"][0]
    assert {"Key": "owner", "Value": "someone-else"} in impostor["TagList"]


def test_a_second_recovery_the_same_day_does_not_take_the_firsts_instance(
    tmp_path: Path, rds_client: Any, setup: tuple[str, Path, str], rds_events: list[tuple[str, Hook]]
) -> None:
    """Both want `<id>-recovery-<date>`; the first one's instance is neither compared nor swapped in by the
    second, which stops before any effect."""
    ident, path, to = setup
    assert run_recover(path, "--instance", ident, "--to", to)[0] == 0
    sent: list[str] = []
    rds_events.append(("before-call.rds.*", lambda model, **_: sent.append(model.name)))
    code, out = run_recover(path, "--instance", ident, "--to", to, "--swap", "--yes")
    assert code == 1 and "already exists and is not this recovery's" in out, out
    assert not [op for op in sent if not is_read(op)]
    assert _hooks(tmp_path) == []
    assert instance_names(rds_client, ident) == {ident, _recovered(ident, to)}
    assert recovery_row(tmp_path, 2)["outcome"] == "failed"


def test_a_recovery_in_another_region_touches_nothing_named_the_same_here(
    tmp_path: Path,
    rds_client: Any,
    moto_server: MotoServer,
    setup: tuple[str, Path, str],
    rds_events: list[tuple[str, Hook]],
) -> None:
    """`--region eu-west-1` for an identifier that exists in both regions: every change is sent to eu-west-1."""
    ident, path, _ = setup
    other = boto3.client("rds", region_name=OTHER_REGION, endpoint_url=moto_server.endpoint_url)
    tagged_instance(other, ident, {}, DBInstanceClass="db.r6g.large", BackupRetentionPeriod=7)
    to = latest_restorable(other, ident)
    regions: list[tuple[str, str]] = []

    def record(model: Any, context: dict[str, Any], **_: Any) -> None:
        if not is_read(model.name):
            regions.append((model.name, str(context.get("client_region") or "")))

    rds_events.append(("before-call.rds.*", record))
    code, out = run_recover(
        path, "--instance", ident, "--to", to, "--region", OTHER_REGION, "--swap", "--yes"
    )
    assert code == 0, out
    assert instance_names(other, ident) == {ident, f"{ident}-old"}
    assert instance_names(rds_client, ident) == {ident}
    here = rds_client.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    assert here["DBInstanceClass"] == "db.r6g.large" and not here["TagList"]
    assert regions and {region for _, region in regions} == {OTHER_REGION}, regions


# ---- scale_instance: an approval given after the instance changed ------------------------------------------------


async def _settled(client: Client, action_id: int, wait: float = 20.0) -> dict[str, Any]:
    """The decision once it is done (not merely pending)."""
    deadline = time.monotonic() + wait
    while True:
        row = await wait_done(client, action_id, wait)
        if row["state"] == "done":
            return row
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.05)


def _modifications(client: Client) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    rds = client.app[keys.RDS]
    assert rds is not None

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params.get("body") or {}))

    rds.client(REGION).meta.events.register("before-call.rds.ModifyDBInstance", record)
    return sent


@pytest.mark.parametrize("change", ["scaled to max_class by hand", "stopped", "pending modifications"])
async def test_an_approval_after_the_instance_changed_acts_on_it_as_it_is_then(
    moto: Moto, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The scale was asked for at db.r6g.large; before the approval someone scaled it to max_class, stopped it,
    or queued a modification. The approved action reads the instance again and refuses: never past
    max_class, never on a stopped instance, never applying someone else's queued change."""
    monkeypatch.setenv("PGW_TEST_ALICE_TOKEN", ALICE)
    approvers = [{"name": "alice", "token_env": "PGW_TEST_ALICE_TOKEN"}]
    client = await moto.responder(scale={"require_approval": True}, approvers=approvers)
    ident = moto.instance("db.r6g.large")
    (decision,) = await post_alerts(client, alert("RDSCPUHigh", dbidentifier=ident, aws_region=REGION))
    assert (await wait_done(client, decision["id"]))["state"] == "pending"
    if change == "stopped":
        moto.rds_client.stop_db_instance(DBInstanceIdentifier=ident)
    elif change == "pending modifications":
        pending = {"PendingModifiedValues": {"DBInstanceClass": "db.t3.medium"}}
        rds = client.app[keys.RDS]
        assert rds is not None

        def shaped(parsed: dict[str, Any], **_: Any) -> None:
            for inst in parsed.get("DBInstances", []):
                inst.update(pending)

        rds.client(REGION).meta.events.register("after-call.rds.DescribeDBInstances", shaped)
    else:
        moto.rds_client.modify_db_instance(
            DBInstanceIdentifier=ident, DBInstanceClass="db.r6g.xlarge", ApplyImmediately=True
        )
    before = moto.describe(ident)
    sent = _modifications(client)
    resp = await client.post(f"/actions/{decision['id']}/approve", headers=bearer(ALICE))
    assert resp.status == 202 and (await resp.json())["result"] == "approved"
    row = await _settled(client, decision["id"])
    assert row["outcome"] == "guardrail", row
    why = {"stopped": "'stopped'", "pending modifications": "pending modifications"}.get(change, "max_class")
    assert why in row["error"], row
    assert sent == []
    after = moto.describe(ident)
    assert after["DBInstanceClass"] == before["DBInstanceClass"]
    assert after["DBInstanceStatus"] == before["DBInstanceStatus"]


# ---- restore_drill: the restore refused, lost, or its name taken -------------------------------------------------


def _drill_names(ident: str) -> list[str]:
    """The drill names of `ident` for this minute and the next two (the drill names itself after its start)."""
    now = time.time()
    return [f"{ident}-drill-{datetime.fromtimestamp(now + 60 * n, UTC):%Y%m%d%H%M}" for n in range(3)]


async def test_a_drill_whose_name_is_taken_deletes_nothing(
    drill_client: DrillClient, rds_client: Any
) -> None:
    """Another responder (its own journal, its row 1 too) drills the same instance the same minute: its drill
    instance has the name this drill's restore asks for and the tag `pgwarden:drill=1`. RDS refuses this restore
    (DBInstanceAlreadyExists); neither the clean-up that follows every drill nor the sweeper may delete the
    other responder's instance: this row never made it."""
    ident = production(rds_client)
    client = await drill_client(ident)
    tags = {"pgwarden:drill": "1", "pgwarden:expires": str(int(time.time()) + DAY)}
    taken = [tagged_instance(rds_client, name, tags) for name in _drill_names(ident)]
    sent = _mutations(client, REGION)
    row = await run_drill(client)
    assert row["id"] == 1 and row["outcome"] == "failed", row
    assert "DBInstanceAlreadyExists" in row["error"], row
    (restore,) = row["plan"]["effects"][:1]
    assert restore["state"] == "failed" and restore["refused"] is True, restore
    assert not row["result"]["deleted"], row["result"]
    sweeper = client.app[keys.DRILLS].sweeper
    assert isinstance(sweeper, DrillSweeper)
    assert await sweeper.sweep() == []  # the drill is done: its row's instances would be swept now
    assert ("DeleteDBInstance", REGION) not in sent
    assert set(taken) <= _alive(rds_client)


@pytest.mark.parametrize("made", [False, True])
async def test_a_drill_whose_restore_failed_leaves_nothing_and_deletes_once(
    drill_client: DrillClient, rds_client: Any, made: bool
) -> None:
    """The restore throttled (never made) or its answer lost to a 5xx (made): the drill fails, and what RDS
    made is deleted, once; nothing else is."""
    ident = production(rds_client)
    client = await drill_client(ident)
    rds = client.app[keys.RDS]
    assert rds is not None
    error = {
        "Error": {"Code": "ThrottlingException" if not made else "InternalFailure", "Message": "injected"}
    }

    def fail(**_: Any) -> None:
        raise ClientError(error, "RestoreDBInstanceFromDBSnapshot")  # type: ignore[arg-type]

    stage = "after-call" if made else "before-call"
    rds.client(REGION).meta.events.register(f"{stage}.rds.RestoreDBInstanceFromDBSnapshot", fail)
    sent = _mutations(client, REGION)
    row = await run_drill(client)
    assert row["outcome"] == "failed" and "injected" in row["error"], row
    assert row["result"]["deleted"] is True, row["result"]
    deletes = [op for op, _ in sent if op == "DeleteDBInstance"]
    assert deletes == (["DeleteDBInstance"] if made else [])
    assert not [n for n in _alive(rds_client) if n.startswith(f"{ident}-drill-")]
    assert ident in _alive(rds_client)
