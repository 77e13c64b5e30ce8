"""The journal commits, and its answer is lost (the connection drops between COMMIT and its reply): the
webhook or the approver is told the journal is unavailable, yet the decision is journaled `queued`, owned by
this live replica. No other replica's recovery takes a live replica's work, and no task of this one holds
it: it must still run, once, through the claim (and a redelivery must not run it twice)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from responder import keys
from responder.config import Config
from responder.journal import JournalUnavailable
from tests.support.journal import journal_sql
from tests.support.receivers import WebhookReceiver
from tests.support.responder import APPROVE, AUTH, ClientFactory, ConfigFactory, Recorder, record_playbook
from tests.support.webhook import alert, payload, post_alerts, wait_done

Client = Any
SUNDAY_3AM = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)  # a due tick of `0 3 * * *` for the tests' clock


def lose_the_answer_of(client: Client, op_name: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first journal transaction whose function's qualified name holds `op_name` commits, then its caller
    gets JournalUnavailable instead of the result, as when the connection drops after COMMIT. The list names
    what was lost."""
    store = client.app[keys.JOURNAL].store
    real_run = store.run
    lost: list[str] = []

    async def run(op: Any, heavy: bool = False) -> Any:
        result = await real_run(op, heavy)
        if not lost and op_name in op.__qualname__:
            lost.append(op.__qualname__)
            raise JournalUnavailable("server closed the connection unexpectedly")
        return result

    monkeypatch.setattr(store, "run", run)
    return lost


def delay_the_answer_of(
    client: Client, op_name: str, seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first journal transaction whose function's qualified name holds `op_name` commits, then its answer
    reaches the caller `seconds` later (a slow network, a busy store): committed, not lost."""
    store = client.app[keys.JOURNAL].store
    real_run = store.run
    delayed: list[str] = []

    async def run(op: Any, heavy: bool = False) -> Any:
        result = await real_run(op, heavy)
        if not delayed and op_name in op.__qualname__:
            delayed.append(op.__qualname__)
            await asyncio.sleep(seconds)
        return result

    monkeypatch.setattr(store, "run", run)


def journaled(client: Client, action_id: int) -> tuple[str, str | None, str | None]:
    """The decision's state, outcome and error as the journal holds them."""
    url = client.app[keys.CONFIG].schema.journal
    sql = "SELECT state, outcome, error FROM pgwarden_actions WHERE id = ?"
    state, outcome, error = journal_sql(url, sql, (action_id,))[0]
    return str(state), outcome, error


def state_of(client: Client, action_id: int) -> str:
    url = client.app[keys.CONFIG].schema.journal
    return str(journal_sql(url, "SELECT state FROM pgwarden_actions WHERE id = ?", (action_id,))[0][0])


def approving(
    make_config: ConfigFactory,
    journal: str,
    approvers: list[dict[str, str]],
    playbook: dict[str, Any] | None = None,
    **overrides: Any,
) -> Config:
    """The `rec` playbook (with `playbook`'s fields) run once alice approves it, on `journal`; replica_timeout
    1 s unless `overrides` say otherwise."""
    return make_config(
        journal=journal,
        approvers=approvers,
        playbooks=[record_playbook(require_approval=True, **(playbook or {}))],
        **{"replica_timeout": "1s", **overrides},
    )


async def test_an_approval_whose_answer_was_lost_runs_once(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    approvers: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    config = approving(make_config, journal_url, approvers)
    client = await client_for(config)
    (decision,) = await post_alerts(client, alert())
    action_id = int(decision["id"])
    lost = lose_the_answer_of(client, "decide_and_get", monkeypatch)
    resp = await client.post(f"/actions/{action_id}/approve", headers=APPROVE)
    assert lost and resp.status == 503, await resp.text()
    assert state_of(client, action_id) == "queued"  # committed: approved, and no task started it
    started = time.monotonic()
    row = await wait_done(client, action_id, wait=15)
    assert row["outcome"] == "succeeded", row
    assert row["decided_by"] == "alice"
    assert time.monotonic() - started < 10  # within a few housekeeping ticks of replica_timeout (1 s)
    assert [r["id"] for r in recorder.runs] == [action_id]
    # pressed again (the approver was told it failed): decided once already, and nothing runs twice
    assert (await client.post(f"/actions/{action_id}/approve", headers=APPROVE)).status == 409
    assert len(recorder.runs) == 1


async def test_a_delivery_whose_answer_was_lost_runs_once_and_its_redelivery_is_a_duplicate(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    client = await client_for(make_config(journal=journal_url, replica_timeout="1s"))
    lost = lose_the_answer_of(client, "op_record.", monkeypatch)
    firing = alert()
    resp = await client.post("/webhook", json=payload(firing), headers=AUTH)
    assert lost and resp.status == 503, await resp.text()
    [(action_id, state)] = journal_sql(
        client.app[keys.CONFIG].schema.journal, "SELECT id, state FROM pgwarden_actions", ()
    )
    assert state == "queued"
    (again,) = await post_alerts(client, firing)  # Alertmanager retries the delivery it saw fail
    assert again["outcome"] == "duplicate" and again["duplicate_of"] == action_id, again
    row = await wait_done(client, int(action_id), wait=15)
    assert row["outcome"] == "succeeded", row
    assert [r["id"] for r in recorder.runs] == [action_id]


async def test_an_approval_answered_after_replica_timeout_is_run_by_one_task(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    approvers: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    """The approval commits and its answer comes back late, not lost: revive starts the decision meanwhile,
    then the approval's own answer arrives and starts it too. One run, and at shutdown the running action gets
    its grace and is journaled as it ended, not `interrupted` "before it started" by the second task."""
    config = approving(
        make_config, journal_url, approvers, {"params": {"sleep": "4s"}}, shutdown_timeout="30s"
    )
    client = await client_for(config)
    (decision,) = await post_alerts(client, alert())
    action_id = int(decision["id"])
    delay_the_answer_of(client, "decide_and_get", 3.0, monkeypatch)
    resp = await client.post(f"/actions/{action_id}/approve", headers=APPROVE)
    assert resp.status == 202, await resp.text()
    assert [r["id"] for r in recorder.runs] == [action_id]  # revive started it while the answer was late
    dispatcher = client.app[keys.DISPATCHER]
    for _ in range(40):  # a second task for it, if any, has ended (its claim found the row running)
        if dispatcher.busy == 1:
            break
        await asyncio.sleep(0.05)
    assert dispatcher.busy == 1
    await client.close()  # shutdown: the running action (about 2 s left) is waited for
    assert journaled(client, action_id) == ("done", "succeeded", None)
    assert len(recorder.runs) == 1


async def lose_an_approval(
    client: Client, monkeypatch: pytest.MonkeyPatch, delivered_to: Client | None = None
) -> int:
    """A pending decision of a fresh alert (delivered to `client` unless said), approved by alice on `client`,
    the approval's answer lost: its id."""
    (decision,) = await post_alerts(delivered_to or client, alert())
    action_id = int(decision["id"])
    lost = lose_the_answer_of(client, "decide_and_get", monkeypatch)
    resp = await client.post(f"/actions/{action_id}/approve", headers=APPROVE)
    assert lost and resp.status == 503, await resp.text()
    return action_id


async def test_decisions_waiting_for_a_slot_longer_than_replica_timeout_run_once_each(
    make_config: ConfigFactory, client_for: ClientFactory, recorder: Recorder, journal_url: str
) -> None:
    """Queued and submitted, then waiting for `max_concurrent_actions` well past replica_timeout: a task holds
    each, so revive does not start any of them a second time."""
    config = make_config(
        journal=journal_url,
        replica_timeout="1s",
        max_concurrent_actions=1,
        playbooks=[record_playbook(params={"sleep": "1.5s"}, cooldown="0s")],
    )
    client = await client_for(config)
    decisions = await post_alerts(client, alert(), alert(), alert())
    ids = [int(d["id"]) for d in decisions]
    for action_id in ids:
        assert (await wait_done(client, action_id, wait=20))["outcome"] == "succeeded"
    assert sorted(r["id"] for r in recorder.runs) == ids


@pytest.mark.parametrize(
    ("guard", "why"),
    [
        ({"cooldown": "1h"}, "cooldown: last action"),
        ({"cooldown": "0s", "max_per_day": 1}, "max_per_day: 1 "),
    ],
)
async def test_a_revived_decision_still_meets_the_cooldown_and_the_daily_cap(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    approvers: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
    guard: dict[str, Any],
    why: str,
) -> None:
    config = approving(make_config, journal_url, approvers, guard)
    client = await client_for(config)
    (first,) = await post_alerts(client, alert())
    assert (await client.post(f"/actions/{first['id']}/approve", headers=APPROVE)).status == 202
    assert (await wait_done(client, int(first["id"])))["outcome"] == "succeeded"
    action_id = await lose_an_approval(client, monkeypatch)
    row = await wait_done(client, action_id, wait=15)
    assert row["outcome"] == "cooldown" and row["error"].startswith(why), row
    assert [r["id"] for r in recorder.runs] == [first["id"]]


async def test_a_revived_decision_runs_in_the_mode_it_was_decided_in(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    approvers: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    """A dry-run playbook's decision, revived, is a dry run: it plans, and changes nothing."""
    config = approving(make_config, journal_url, approvers, {"mode": "dry-run"})
    client = await client_for(config)
    action_id = await lose_an_approval(client, monkeypatch)
    row = await wait_done(client, action_id, wait=15)
    assert row["outcome"] == "dry_run" and row["mode"] == "dry-run", row
    assert set(row["plan"]) == {"target"}  # it planned
    assert recorder.runs == []


async def test_a_revived_decision_whose_playbook_mode_changed_is_not_run(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    approvers: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    """Decided and approved as a dry run, its answer lost; revive resolves it against a configuration whose
    playbook now enforces (a restart would interrupt it first: this is the check behind that): it is journaled
    `expired` with why, never run for real."""
    dry = approving(make_config, journal_url, approvers, {"mode": "dry-run"}, replica_timeout="30s")
    client = await client_for(dry)
    action_id = await lose_an_approval(client, monkeypatch)
    dispatcher = client.app[keys.DISPATCHER]
    dispatcher.config = approving(
        make_config, journal_url, approvers, {"mode": "enforce"}, replica_timeout="0s"
    )
    await dispatcher.revive()
    state, outcome, error = journaled(client, action_id)
    assert (state, outcome) == ("done", "expired"), error
    assert error is not None and "mode changed from dry-run to enforce" in error
    assert recorder.runs == []


def cut_off(client: Client, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Every journal transaction of this replica fails from now on (a partition: to the others it is dead, its
    heartbeat stops); the function returned heals it."""
    store = client.app[keys.JOURNAL].store
    real_run = store.run

    async def run(op: Any, heavy: bool = False) -> Any:
        raise JournalUnavailable("connection timed out")

    monkeypatch.setattr(store, "run", run)
    return lambda: monkeypatch.setattr(store, "run", real_run)


async def wait_ended(client: Client, action_id: int, wait: float = 15) -> tuple[str, str | None, str | None]:
    """The decision as the journal holds it once it is done (read from outside the responder)."""
    deadline = time.monotonic() + wait
    while (row := journaled(client, action_id))[0] != "done":
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.1)
    return row


async def test_of_two_replicas_only_the_one_whose_answer_was_lost_runs_it(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    approvers: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    pg_journal: str,
) -> None:
    """Alertmanager delivered the alert to one replica, the approver approved it on the other and that answer
    was lost: the approval made the approving replica its owner, so that one (and only it) starts it."""
    config = approving(make_config, pg_journal, approvers)
    lost_on, other = await client_for(config), await client_for(config)
    action_id = await lose_an_approval(lost_on, monkeypatch, delivered_to=other)
    row = await wait_done(other, action_id, wait=15)
    assert row["outcome"] == "succeeded", row
    assert (
        row["replica"] == lost_on.app[keys.OWNER] != other.app[keys.OWNER]
    )  # claimed by the one that lost it
    await asyncio.sleep(1.5)  # a few more ticks of both
    assert [r["id"] for r in recorder.runs] == [action_id]


async def test_an_orphan_is_not_started_while_the_responder_drains(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    """Shutdown waits for a running action past replica_timeout while housekeeping still ticks: the orphan of
    a lost delivery answer is not started during the drain (the next start interrupts it)."""
    config = make_config(
        journal=journal_url,
        replica_timeout="1s",
        shutdown_timeout="30s",
        playbooks=[record_playbook(params={"sleep": "3s"}, cooldown="0s")],
    )
    client = await client_for(config)
    (running,) = await post_alerts(client, alert())
    lost = lose_the_answer_of(client, "op_record.", monkeypatch)
    resp = await client.post("/webhook", json=payload(alert()), headers=AUTH)
    assert lost and resp.status == 503, await resp.text()
    [(orphan,)] = journal_sql(journal_url, "SELECT id FROM pgwarden_actions WHERE id <> ?", (running["id"],))
    started = time.monotonic()
    await client.close()
    assert time.monotonic() - started > 2  # it drained the running action, revive ticking meanwhile
    assert journaled(client, running["id"])[:2] == ("done", "succeeded")
    assert journaled(client, int(orphan))[0] == "queued"
    assert [r["id"] for r in recorder.runs] == [running["id"]]


async def test_a_replica_cut_off_from_the_journal_leaves_its_orphan_interrupted_and_never_runs_it(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    pg_journal: str,
) -> None:
    """The delivery's answer is lost, then the replica loses the journal altogether: its heartbeat stops, the
    other replica interrupts its queued decision. When it reaches the journal again, it revives nothing."""
    config = make_config(journal=pg_journal, replica_timeout="1s")
    cut, other = await client_for(config), await client_for(config)
    lost = lose_the_answer_of(cut, "op_record.", monkeypatch)
    resp = await cut.post("/webhook", json=payload(alert()), headers=AUTH)
    assert lost and resp.status == 503, await resp.text()
    heal = cut_off(cut, monkeypatch)
    [(action_id,)] = journal_sql(pg_journal, "SELECT id FROM pgwarden_actions", ())
    _, outcome, error = await wait_ended(other, int(action_id))
    assert (outcome, error) == ("interrupted", "the responder stopped before this action started")
    heal()
    await asyncio.sleep(3)  # several housekeeping ticks of the healed replica
    assert journaled(cut, int(action_id))[1] == "interrupted"
    assert recorder.runs == []


async def test_a_restart_interrupts_the_previous_process_orphan_and_does_not_revive_it(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    """Stopped before revive took its orphan: the next process (a new owner) journals it `interrupted` (SQLite:
    at start-up; PostgreSQL: once the old owner's heartbeat is replica_timeout old), and never runs it."""
    config = make_config(journal=journal_url, replica_timeout="1s")
    before = await client_for(config)
    lost = lose_the_answer_of(before, "op_record.", monkeypatch)
    resp = await before.post("/webhook", json=payload(alert()), headers=AUTH)
    assert lost and resp.status == 503, await resp.text()
    await before.close()
    [(action_id,)] = journal_sql(journal_url, "SELECT id FROM pgwarden_actions", ())
    after = await client_for(config)
    assert after.app[keys.OWNER] != before.app[keys.OWNER]
    _, outcome, error = await wait_ended(after, int(action_id))
    assert (outcome, error) == ("interrupted", "the responder stopped before this action started")
    await asyncio.sleep(1.5)
    assert recorder.runs == []


async def test_revive_survives_the_journal_failing_and_runs_the_orphan_once_it_is_back(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    approvers: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    config = approving(make_config, journal_url, approvers)
    client = await client_for(config)
    journal = client.app[keys.JOURNAL]
    real_orphaned = journal.orphaned
    failures: list[float] = []

    async def orphaned(older_than: float) -> Any:
        if len(failures) < 3:
            failures.append(older_than)
            raise JournalUnavailable("connection refused")
        return await real_orphaned(older_than)

    monkeypatch.setattr(journal, "orphaned", orphaned)
    action_id = await lose_an_approval(client, monkeypatch)
    row = await wait_done(client, action_id, wait=20)
    assert row["outcome"] == "succeeded" and len(failures) == 3, row
    assert (await client.get("/healthz")).status == 200
    assert [r["id"] for r in recorder.runs] == [action_id]


async def test_a_large_delivery_whose_answer_was_lost_runs_each_decision_once(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    """Several slices of decisions journaled in one transaction, its answer lost: every one is revived and run
    once (a redelivery of the whole payload is all duplicates)."""
    client = await client_for(make_config(journal=journal_url, replica_timeout="1s"))
    alerts = [alert() for _ in range(150)]
    lost = lose_the_answer_of(client, "op_record.", monkeypatch)
    resp = await client.post("/webhook", json=payload(*alerts), headers=AUTH)
    assert lost and resp.status == 503, await resp.text()
    again = await post_alerts(client, *alerts)
    assert {d["outcome"] for d in again} == {"duplicate"}
    ids = sorted(int(d["duplicate_of"]) for d in again)
    assert len(set(ids)) == 150
    for action_id in ids:
        assert (await wait_done(client, action_id, wait=30))["outcome"] == "succeeded"
    assert sorted(r["id"] for r in recorder.runs) == ids


async def test_a_scheduled_tick_whose_answer_was_lost_runs_once(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    """The tick's decision is journaled and its answer lost: the tick is retried (a duplicate of the first)
    and the first is revived, so the job runs once."""
    schedule = {
        "name": "nightly",
        "cron": "0 3 * * *",
        "action": "record",
        "target": {"target": "production"},
    }
    client = await client_for(make_config(journal=journal_url, replica_timeout="1s", schedules=[schedule]))
    lost = lose_the_answer_of(client, "op_record.", monkeypatch)
    client.app[keys.SCHEDULER].next_run["nightly"] = SUNDAY_3AM
    deadline = time.monotonic() + 20
    while not recorder.runs:
        assert time.monotonic() < deadline, "the tick's decision never ran"
        await asyncio.sleep(0.05)
    assert lost
    await asyncio.sleep(1.5)  # more ticks: the next tick is not due before next Sunday
    rows = journal_sql(
        journal_url, "SELECT id, playbook, outcome, duplicate_of FROM pgwarden_actions ORDER BY id", ()
    )
    first = rows[0][0]
    assert [r[1:] for r in rows] == [("nightly", "succeeded", None), ("nightly", "duplicate", first)], rows
    assert [r["id"] for r in recorder.runs] == [first]


async def test_a_claim_whose_answer_was_lost_runs_the_action_instead_of_leaving_it_running(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    """The claim (queued -> running) commits and its answer is lost: the retried claim finds the row no
    longer queued. The decision is this task's, claimed by it: it runs once and ends, instead of staying
    `running` (blocking one change at a time, counting toward the cap) on a live replica until a restart."""
    client = await client_for(make_config(journal=journal_url, replica_timeout="1s"))
    lost = lose_the_answer_of(client, "op_claim.", monkeypatch)
    (decision,) = await post_alerts(client, alert())
    action_id = int(decision["id"])
    row = await wait_done(client, action_id, wait=15)
    assert lost and row["outcome"] == "succeeded", row
    assert [r["id"] for r in recorder.runs] == [action_id]


async def test_an_outcome_whose_answer_was_lost_is_announced_once(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    """The outcome's transaction commits and its answer is lost: the retry journals nothing new, so the
    receivers are told the outcome once, not once per attempt."""
    monkeypatch.setenv("AUDIT_HMAC", "audit-hmac-secret-0123456789")
    hook = await WebhookReceiver(hmac_secret="audit-hmac-secret-0123456789").start()
    try:
        notify = {
            "receivers": [{"name": "audit", "webhook": {"url": hook.url, "hmac_secret_env": "AUDIT_HMAC"}}],
            "routes": [{"receiver": "audit", "outcomes": ["*"]}],
            "public_url": "https://pgwarden.example.internal",
        }
        client = await client_for(make_config(journal=journal_url, notify=notify))
        lost = lose_the_answer_of(client, "op_finish.", monkeypatch)
        (decision,) = await post_alerts(client, alert())
        row = await wait_done(client, int(decision["id"]), wait=15)
        assert lost and row["outcome"] == "succeeded", row
        await asyncio.sleep(1.0)  # the retry after the lost answer (0.5 s) has journaled by now
        changes = journal_sql(
            journal_url, "SELECT change FROM pgwarden_outbox WHERE action_id = ?", (decision["id"],)
        )
        assert [c for (c,) in changes] == ["succeeded"]
        assert len(recorder.runs) == 1
    finally:
        await hook.stop()


async def test_a_delivery_answered_after_replica_timeout_is_run_by_one_task_each(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    """A delivery's decisions are journaled and the answer comes back late: revive starts them meanwhile, and
    the webhook's own submission of each (in slices) starts none again; at shutdown the running ones get their
    grace and end as they did."""
    config = make_config(
        journal=journal_url,
        replica_timeout="1s",
        shutdown_timeout="30s",
        playbooks=[record_playbook(params={"sleep": "4s"}, cooldown="0s")],
    )
    client = await client_for(config)
    delay_the_answer_of(client, "op_record.", 3.0, monkeypatch)
    decisions = await post_alerts(client, alert(), alert(), alert())
    ids = sorted(int(d["id"]) for d in decisions)
    assert sorted(r["id"] for r in recorder.runs) == ids  # revive started them while the answer was late
    assert client.app[keys.DISPATCHER].busy == 3
    await client.close()
    assert [journaled(client, i) for i in ids] == [("done", "succeeded", None)] * 3
    assert sorted(r["id"] for r in recorder.runs) == ids


async def test_a_run_now_whose_answer_was_lost_is_not_run_unasked(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    """A "run now" press journaled, its answer lost: the operator saw 503, and a press again is a decision of
    its own (not a duplicate, as a redelivered alert or a retried tick is). Reviving the first as well would
    run the job twice: it is journaled `interrupted`, never run, and the press again runs the job once."""
    schedule = {
        "name": "nightly",
        "cron": "0 3 * * *",
        "action": "record",
        "target": {"target": "production"},
    }
    client = await client_for(make_config(journal=journal_url, replica_timeout="1s", schedules=[schedule]))
    lost = lose_the_answer_of(client, "op_record.", monkeypatch)
    resp = await client.post("/schedules/nightly/run", headers=AUTH)
    assert lost and resp.status == 503, await resp.text()
    [(first, state)] = journal_sql(journal_url, "SELECT id, state FROM pgwarden_actions", ())
    assert state == "queued"
    again = await client.post("/schedules/nightly/run", headers=AUTH)
    assert again.status == 202
    second = (await again.json())["id"]
    assert (await wait_done(client, second))["outcome"] == "succeeded"
    row = await wait_done(client, int(first), wait=15)
    assert row["outcome"] == "interrupted" and "run-now was lost" in (row["error"] or ""), row
    await asyncio.sleep(1.5)  # more housekeeping ticks: nothing else starts
    assert [r["id"] for r in recorder.runs] == [second]
