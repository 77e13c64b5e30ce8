"""The outbox is written in the decision's own transaction: a change journaled is a change queued for its
receivers, and a change that fails to journal queues nothing; its leases let one replica at a time send a row."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from responder.decision import AlertTrigger, Decision
from responder.journal import Claim, Journal, JournalUnavailable, open_store
from responder.journal.outbox import SENT
from responder.notify.config import NotifySettings, Receiver, Route
from responder.notify.metrics import NotifyMetrics
from responder.notify.model import Digest, MessageRef, Notice
from responder.notify.outbox import router
from responder.notify.sender import Sender
from responder.outcomes import Answer, Outcome, State
from tests.responder.notify.conftest import FAST
from tests.support.journal import journal_sql


def decision(state: State, key: str) -> Decision:
    trigger = AlertTrigger("TestAlert", key, "2026-11-24T03:00:00Z", "firing", {"alertname": "TestAlert"})
    return Decision(trigger, state, "rec", "record", "enforce", dedup_key=f"rec|{key}")


def to_audit(key: str, playbook: str) -> Sequence[str]:
    """Pending decisions and failures of `rec` go to `audit`; every outcome to `all`."""
    names = ["all"]
    if key in ("pending", "failed", "expired") and playbook == "rec":
        names.insert(0, "audit")
    return names


def queued(url: str) -> list[tuple[int, str, str]]:
    rows = journal_sql(url, "SELECT action_id, receiver, change FROM pgwarden_outbox ORDER BY id")
    return [(int(a), str(r), str(c)) for a, r, c in rows]


async def test_each_change_is_queued_for_its_receivers_in_its_own_transaction(journal_url: str) -> None:
    journal = Journal(open_store(journal_url), "replica-1", to_audit)
    await journal.start()
    try:
        (pending, running) = await journal.record([decision(State.PENDING, "a"), decision(State.QUEUED, "b")])
        assert pending.id is not None and running.id is not None
        assert queued(journal_url) == [(pending.id, "audit", "pending"), (pending.id, "all", "pending")]
        assert await journal.decide(pending.id, True, "alice", 3600) is Answer.APPROVED
        # the approval goes where the pending decision went
        assert queued(journal_url)[2:] == [(pending.id, "audit", "approved"), (pending.id, "all", "approved")]
        claim = Claim(pending.id, "rec", "t", cooldown=0, max_per_day=None)
        assert (await journal.claim(claim)) is not None
        assert len(queued(journal_url)) == 4  # running: nothing to say yet
        await journal.finish(pending.id, Outcome.SUCCEEDED)
        # `succeeded` is routed to `all` only; `audit` heard of the decision before, so it hears how it ended
        assert sorted(queued(journal_url)[4:]) == [
            (pending.id, "all", "succeeded"),
            (pending.id, "audit", "succeeded"),
        ]
        # a decision never said before is said only where its outcome is routed: one INSERT, no follow-up
        await journal.claim(Claim(running.id, "rec", "t2", cooldown=0, max_per_day=None))
        await journal.finish(running.id, Outcome.FAILED)
        assert queued(journal_url)[6:] == [(running.id, "audit", "failed"), (running.id, "all", "failed")]
    finally:
        await journal.close()


async def test_a_change_that_cannot_be_queued_is_not_journaled(journal_url: str) -> None:
    def broken(key: str, playbook: str) -> Sequence[str]:
        raise RuntimeError("routing failed")

    journal = Journal(open_store(journal_url), "replica-1", broken)
    await journal.start()
    try:
        with pytest.raises((RuntimeError, JournalUnavailable)):
            await journal.record([decision(State.PENDING, "a")])
        assert await journal.rows() == 0 and queued(journal_url) == []
    finally:
        await journal.close()


async def test_a_lease_keeps_a_row_to_one_replica_until_it_lapses(journal_url: str) -> None:
    first = Journal(open_store(journal_url), "first", to_audit)
    await first.start()
    try:
        await first.record([decision(State.PENDING, "a")])
        claimed = await first.claim_notices(lease=0.5, limit=10)
        assert [(r.receiver, r.change) for r in claimed] == [("audit", "pending"), ("all", "pending")]
        assert await first.claim_notices(lease=0.5, limit=10) == claimed  # its own lease: claimed again
        other = Journal(first.store, "second", to_audit)
        assert await other.claim_notices(lease=0.5, limit=10) == []  # leased by `first`
        # `first` dies without a word; once its lease lapses `second` takes the rows
        await asyncio.sleep(0.6)
        again = await other.claim_notices(lease=5.0, limit=10)
        assert [r.id for r in again] == [r.id for r in claimed]
        assert (
            await first.notices_done([([r.id for r in again], None)], SENT) == 0
        )  # no longer first's to mark
        assert await other.notices_done([([r.id for r in again], None)], SENT) == 2
        assert await other.claim_notices(lease=5.0, limit=10) == []
        assert await other.queued_notices() == {}
    finally:
        await first.close()


async def test_a_journal_without_routes_queues_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    journal = Journal(open_store(url), "replica-1")
    await journal.start()
    try:
        (pending,) = await journal.record([decision(State.PENDING, "a")])
        assert pending.id is not None
        await journal.decide(pending.id, False, "alice", 3600)
        assert queued(url) == []
    finally:
        await journal.close()


class Threading:
    """A transport as Slack's bot is one: it answers each new message with a reference, and is given it back
    for the next change of the same decision (to edit that message)."""

    kind = "webhook"

    def __init__(self) -> None:
        self.sent: list[tuple[int, str | None, MessageRef | None]] = []

    async def send(
        self, receiver: Receiver, message: Notice | Digest, previous: MessageRef | None
    ) -> MessageRef | None:
        assert isinstance(message, Notice)
        self.sent.append((message.row.id, message.row.state.value, previous))
        return previous or MessageRef("C0", f"ts-{message.row.id}")


async def test_the_next_change_of_a_decision_is_given_its_first_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    settings = NotifySettings(
        (Receiver("chat", "webhook", "http://127.0.0.1:1/x"),), (Route("chat", ("*",), ("*",)),)
    )
    journal = Journal(open_store(url), "replica-1", router(settings))
    await journal.start()
    transport = Threading()
    sender = Sender(journal, settings, (), NotifyMetrics(CollectorRegistry()), FAST, lambda kind: transport)
    try:
        (pending,) = await journal.record([decision(State.PENDING, "a")])
        assert pending.id is not None
        await sender.round()
        await journal.decide(pending.id, False, "alice", 3600)
        await sender.round()
        assert transport.sent == [
            (pending.id, "pending", None),
            (pending.id, "done", MessageRef("C0", f"ts-{pending.id}")),
        ]
        assert journal_sql(url, "SELECT action_id, receiver, channel, ts FROM pgwarden_messages") == [
            (pending.id, "chat", "C0", f"ts-{pending.id}")
        ]
    finally:
        await journal.close()
