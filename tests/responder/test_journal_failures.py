"""The journal failing under the responder: every error a 503, housekeeping that survives, outcomes and claims
that are retried, lock waits off the event loop; on both journals where both can fail so."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from responder import keys
from tests.support.journal import ReadOnlyJournal, journal_sql
from tests.support.responder import AUTH, ClientFactory, ConfigFactory, Recorder, record_playbook
from tests.support.webhook import alert, payload, wait_done

Responder = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def on_journal(make_config: ConfigFactory, client_for: ClientFactory, journal_url: str) -> Responder:
    """Start a responder on the journal under test: it waits 1s for the journal, its `rec` playbook runs 1s."""

    async def start(**overrides: Any) -> TestClient[web.Request, web.Application]:
        return await client_for(
            make_config(
                journal=journal_url,
                journal_timeout="1s",
                playbooks=[record_playbook(params={"sleep": "1s"})],
                **overrides,
            )
        )

    return start


async def _until(predicate: Callable[[], bool], what: str, wait: float = 30.0) -> None:
    deadline = time.monotonic() + wait
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


def _state(url: str, action_id: int) -> tuple[str, str | None]:
    ((state, outcome),) = journal_sql(
        url, "SELECT state, outcome FROM pgwarden_actions WHERE id = ?", (action_id,)
    )
    return state, outcome


@pytest.mark.slow
async def test_a_read_only_journal_is_503_and_housekeeping_and_outcomes_survive_it(
    on_journal: Responder, recorder: Recorder, journal_url: str, read_only: ReadOnlyJournal
) -> None:
    client = await on_journal(replica_timeout="1s")
    owner = client.app[keys.OWNER]
    resp = await client.post("/webhook", json=payload(alert()), headers=AUTH)
    (running,) = (await resp.json())["decisions"]
    await _until(lambda: bool(recorder.runs), "the action started")
    with read_only.refusing():
        for _ in range(3):
            resp = await client.post("/webhook", json=payload(alert()), headers=AUTH)
            assert resp.status == 503, await resp.text()
        # longer than the action, and than any fixed number of attempts to journal its outcome
        await asyncio.sleep(6)
        assert _state(journal_url, running["id"]) == ("running", None)
    await _until(
        lambda: _state(journal_url, running["id"]) == ("done", "succeeded"),
        "the outcome is journaled once the journal is back",
    )

    def seen() -> float:
        return float(
            journal_sql(journal_url, "SELECT seen_at FROM pgwarden_replicas WHERE owner = ?", (owner,))[0][0]
        )

    beat = seen()
    await _until(lambda: seen() > beat, "housekeeping still heartbeats")
    resp = await client.post("/webhook", json=payload(alert()), headers=AUTH)
    assert resp.status == 202


async def test_a_claim_that_fails_is_interrupted_and_the_next_delivery_decides_again(
    on_journal: Responder, recorder: Recorder, journal_url: str, read_only: ReadOnlyJournal
) -> None:
    client = await on_journal(max_concurrent_actions=1)
    busy, waiting = alert(), alert(fingerprint="waits-for-a-slot")
    resp = await client.post("/webhook", json=payload(busy, waiting), headers=AUTH)
    first, second = (await resp.json())["decisions"]
    await _until(lambda: bool(recorder.runs), "the first action started")
    with read_only.refusing():  # the second decision is claimed while the journal refuses writes
        await asyncio.sleep(5)
        assert _state(journal_url, second["id"]) == ("queued", None)
    await _until(
        lambda: _state(journal_url, second["id"]) == ("done", "interrupted"),
        "the unclaimed decision is journaled interrupted",
    )
    assert [r["id"] for r in recorder.runs] == [first["id"]]
    resp = await client.post("/webhook", json=payload(waiting), headers=AUTH)
    (again,) = (await resp.json())["decisions"]
    assert again["state"] == "queued", again  # not a duplicate of the lost decision
    assert (await wait_done(client, again["id"]))["outcome"] == "succeeded"


async def test_an_sqlite_lock_held_elsewhere_is_waited_for_off_the_loop_then_503(
    make_config: ConfigFactory, client_for: ClientFactory, tmp_path: Any
) -> None:
    client = await client_for(make_config())
    holder = sqlite3.connect(tmp_path / "journal.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        webhook = asyncio.create_task(client.post("/webhook", json=payload(alert()), headers=AUTH))
        await asyncio.sleep(0.2)  # the webhook is now waiting for the lock
        health = await client.get("/healthz")
        assert health.status == 200 and not webhook.done(), "the loop answered while the journal waited"
        resp = await webhook
        assert resp.status == 503, await resp.text()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (await client.post("/webhook", json=payload(alert()), headers=AUTH)).status == 202
