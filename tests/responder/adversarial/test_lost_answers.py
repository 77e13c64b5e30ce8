"""The journal commits, and its answer is lost (the connection drops between COMMIT and its reply): the
webhook or the approver is told the journal is unavailable, yet the decision is journaled `queued`, owned by
this live replica. No other replica's recovery takes a live replica's work, and no task of this one holds
it: it must still run, once, through the claim (and a redelivery must not run it twice)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from responder import keys
from responder.journal import JournalUnavailable
from tests.support.journal import journal_sql
from tests.support.responder import APPROVE, AUTH, ClientFactory, ConfigFactory, Recorder, record_playbook
from tests.support.webhook import alert, payload, post_alerts, wait_done

Client = Any


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


async def test_an_approval_whose_answer_was_lost_runs_once(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    recorder: Recorder,
    approvers: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    journal_url: str,
) -> None:
    config = make_config(
        journal=journal_url,
        approvers=approvers,
        replica_timeout="1s",
        playbooks=[record_playbook(require_approval=True)],
    )
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
    config = make_config(
        journal=journal_url,
        approvers=approvers,
        replica_timeout="1s",
        shutdown_timeout="30s",
        playbooks=[record_playbook(require_approval=True, params={"sleep": "4s"})],
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
