"""The sender: a background task that takes due notices from the journal's outbox and sends them.

Each round it leases due notices (a lease per row, so two replicas never send the same one), sends one message
per (decision, receiver) showing the decision as it is now (several queued changes of one decision make one
message), keeps the message's reference (to update it or follow it up), and marks the notices sent. A failed
send is retried with exponential backoff (capped; a receiver's Retry-After is honoured) until it succeeds or
`give_up_after` has passed; a permanent failure is given up at once. Over a receiver's rate limit, notices are
held back and said together in one digest when the window has room. A process that dies mid-queue leaves
leases that lapse: the next round of any replica sends those notices.

An outage never stops the task: it is a metric (`pgwarden_notifications_total{outcome="failed"}`) and a log line
naming the receiver and the decision, never a URL or a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from responder.journal import ActionRow, Journal, JournalUnavailable, OutboxRow
from responder.journal.outbox import DIGESTED, GAVE_UP, SENT, Message
from responder.notify.config import NotifySettings, Receiver
from responder.notify.metrics import NotifyMetrics
from responder.notify.model import DeliveryError, MessageRef, Transport
from responder.notify.outbox import digest, notice
from responder.notify.ratelimit import RateLimits
from responder.notify.transports import discover, transport_for
from responder.principals import Principal

log = logging.getLogger("responder.notify")

MARK_EVERY = (
    20  # messages sent to one receiver between two marks in the journal (a crash resends at most these)
)


@dataclass(frozen=True)
class SenderTuning:
    """The sender's timings (tests shorten them)."""

    poll_interval: float = 1.0  # a round at least this often (sooner when the journal notes a change)
    lease: float = 60.0  # a claimed notice is this replica's for this long (longer than a send may take)
    batch: int = 100  # notices leased per round
    backoff_base: float = 2.0  # the first retry's delay; doubled at each attempt
    backoff_cap: float = 300.0
    give_up_after: float = 86400.0  # a notice still failing this long after it was queued is given up
    window: float = 60.0  # the rate limit's window (rate_per_minute per this many seconds)
    min_interval: float = 0.2  # between two rounds: a busy journal's changes are taken a batch at a time
    gauge_every: float = 5.0  # the queued gauge is read from the journal at most this often

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        delay: float = min(self.backoff_cap, self.backoff_base * 2.0 ** max(0, attempts - 1))
        return max(delay, min(retry_after, 3600.0)) if retry_after is not None else delay


Group = tuple[int, list[OutboxRow]]  # a decision and its leased notices for one receiver


class Sender:
    """Sends the outbox's notices for `settings`' receivers, in a task of its own (`start`, `stop`)."""

    def __init__(
        self,
        journal: Journal,
        settings: NotifySettings,
        principals: Sequence[Principal],
        metrics: NotifyMetrics,
        tuning: SenderTuning = SenderTuning(),
        transports: Callable[[str], Transport | None] = transport_for,
        approvals_needed: Mapping[str, int] | None = None,
    ) -> None:
        self.journal = journal
        self.settings = settings
        self.principals = tuple(principals)
        self.metrics = metrics
        self.tuning = tuning
        self.transports = transports
        self.approvals_needed = dict(approvals_needed or {})  # by playbook: the two-person rule's count
        self.limits = RateLimits(self._rate_of, tuning.window)
        self._task: asyncio.Task[None] | None = None
        self._names = tuple(r.name for r in settings.receivers)
        self._backlogged: dict[str, float] = {}  # over the limit, notices held: digest due at (monotonic)
        self._gauge_at = 0.0
        self._digest_attempts: dict[str, int] = {}

    def _rate_of(self, name: str) -> int:
        receiver = self.settings.receiver(name)
        return receiver.rate_per_minute if receiver is not None else 1

    async def start(self) -> None:
        discover()  # a transport module that is broken fails the start, not every round
        self.metrics.set_queued(self._names, {})
        self._task = asyncio.create_task(self.run(), name="notify-sender")

    async def stop(self) -> None:
        """Stop sending; the notices leased and not sent are given back at once (another replica sends them)."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        with contextlib.suppress(JournalUnavailable):
            await self.journal.release_notices()
        for transport in discover().values():  # their HTTP sessions
            close = getattr(transport, "aclose", None)
            if close is not None:
                await close()

    async def run(self) -> None:
        """Rounds until cancelled; nothing but cancellation ends it."""
        while True:
            self.journal.noted.clear()
            full = False
            try:
                full = await self.round() >= self.tuning.batch
            except JournalUnavailable as exc:
                log.warning("notifications: journal unavailable", extra={"error": str(exc)})
            except Exception:  # never die: the next round tries again
                log.exception("notifications: round failed")
            await asyncio.sleep(self.tuning.min_interval)
            if full:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.journal.noted.wait(), self.tuning.poll_interval)

    async def round(self) -> int:
        """Send the digests that are due, then lease due notices and send them, every receiver at once (none
        whose rate limit is reached); how many notices were leased."""
        now = time.time()
        for name, due in list(self._backlogged.items()):
            if due <= time.monotonic() and self.limits[name].free_in(now) == 0:
                await self._send_digest(name)
        blocked = [n for n in self._names if n in self._backlogged or self.limits[n].free_in(now) > 0]
        rows: list[OutboxRow] = []
        if len(blocked) < len(self._names):
            rows = await self.journal.claim_notices(self.tuning.lease, self.tuning.batch, blocked)
        by_receiver: dict[str, dict[int, list[OutboxRow]]] = {}
        for row in rows:
            by_receiver.setdefault(row.receiver, {}).setdefault(row.action_id, []).append(row)
        if by_receiver:
            await asyncio.gather(*(self._receiver(name, list(g.items())) for name, g in by_receiver.items()))
        if time.monotonic() >= self._gauge_at:
            self._gauge_at = time.monotonic() + self.tuning.gauge_every
            self.metrics.set_queued(self._names, await self.journal.queued_notices())
        return len(rows)

    async def _receiver(self, name: str, groups: list[Group]) -> None:
        started = time.monotonic()
        receiver = self.settings.receiver(name)
        transport = self.transports(receiver.kind) if receiver is not None else None
        if receiver is None or transport is None:
            why = "no such receiver is configured" if receiver is None else "no transport for its kind"
            for action_id, rows in groups:
                await self._give_up(name, action_id, rows, why)
            return
        window = self.limits[name]
        found = await self.journal.notices_of([action_id for action_id, _ in groups], name)
        sent: list[tuple[Sequence[int], Message | None]] = []  # marked a few at a time, in one transaction
        try:
            for i, (action_id, rows) in enumerate(groups):
                now = time.time()
                if time.monotonic() - started > self.tuning.lease / 2:
                    await self._later(groups[i:], 0.0)  # leases must not lapse while this replica holds them
                    return
                if not window.take(now):  # over the limit: these and what follows wait for one digest
                    self._backlogged.setdefault(name, 0.0)
                    await self._hold(window.free_in(now), groups[i:])
                    return
                if action_id not in found:
                    await self._give_up(name, action_id, rows, "the decision is no longer in the journal")
                    continue
                row, ref = found[action_id]
                if not await self._send_one(receiver, transport, row, ref, rows, sent):
                    await self._later(groups[i + 1 :], 0.0)  # the receiver is failing: the rest waits
                    return
                if len(sent) >= MARK_EVERY:
                    await self.journal.notices_done(sent, SENT)
                    sent.clear()
        finally:
            if sent:
                await self.journal.notices_done(sent, SENT)

    async def _send_one(
        self,
        receiver: Receiver,
        transport: Transport,
        row: ActionRow,
        ref: tuple[str | None, str | None] | None,
        rows: list[OutboxRow],
        sent: list[tuple[Sequence[int], Message | None]],
    ) -> bool:
        """One message for decision `row` (added to `sent` when the receiver took it): whether it did."""
        name = receiver.name
        previous = MessageRef(*ref) if ref is not None else None
        needed = self.approvals_needed.get(row.playbook or "", 1)
        message = notice(row, receiver, self.settings, self.principals, needed)
        try:
            answered = await transport.send(receiver, message, previous)
        except Exception as exc:  # any failure of a transport is a failed attempt
            return await self._failed(name, [(row.id, rows)], exc)
        kept = (row.id, name, answered.channel, answered.ts) if answered is not None else None
        sent.append(([r.id for r in rows], kept))
        self.metrics.count(name, SENT)
        log.info(
            "notification sent",
            extra={
                "receiver": name,
                "action_id": row.id,
                "changes": len(rows),
                "update": previous is not None,
            },
        )
        return True

    async def _send_digest(self, name: str) -> None:
        """One message for every notice `name`'s rate limit held back (and any other due for it)."""
        receiver = self.settings.receiver(name)
        transport = self.transports(receiver.kind) if receiver is not None else None
        if receiver is None or transport is None or not self.limits[name].take(time.time()):
            return
        count, latest = await self.journal.claim_digest(name, self.tuning.lease)
        if count == 0:
            del self._backlogged[name]
            return
        try:
            await transport.send(receiver, digest(count, latest, self.settings), None)
        except Exception as exc:  # any failure of a transport is a failed attempt
            error, permanent, retry_after = _failure(exc)
            if permanent:
                del self._backlogged[name]
                await self.journal.digest_done(name, GAVE_UP)
                self.metrics.count(name, GAVE_UP, count)
                log.error(
                    "notification digest given up",
                    extra={"receiver": name, "decisions": count, "error": error},
                )
                return
            delay = self.tuning.backoff(self._digest_attempts.get(name, 0) + 1, retry_after)
            self._digest_attempts[name] = self._digest_attempts.get(name, 0) + 1
            self._backlogged[name] = time.monotonic() + delay
            await self.journal.digest_done(name, None, delay)
            self.metrics.count(name, "failed")
            log.warning(
                "notification digest failed, will retry",
                extra={"receiver": name, "decisions": count, "retry_in": round(delay, 3), "error": error},
            )
            return
        del self._backlogged[name]
        self._digest_attempts.pop(name, None)
        await self.journal.digest_done(name, DIGESTED)
        self.metrics.count(name, DIGESTED, count)
        log.info("notification digest sent", extra={"receiver": name, "decisions": count})

    async def _failed(self, name: str, groups: list[Group], exc: Exception) -> bool:
        """A send that failed: retried later, or given up. Whether the receiver may be tried again this round."""
        error, permanent, retry_after = _failure(exc)
        rows = [r for _, group in groups for r in group]
        oldest = min(r.created_at for r in rows)
        if permanent or time.time() - oldest > self.tuning.give_up_after:
            for action_id, group in groups:
                await self._give_up(name, action_id, group, error)
            return True
        attempts = max(r.attempts for r in rows) + 1
        delay = self.tuning.backoff(attempts, retry_after)
        await self.journal.notices_later([r.id for r in rows], delay, failed=True, held=False)
        self.metrics.count(name, "failed", len(groups))
        for action_id, _ in groups:
            log.warning(
                "notification failed, will retry",
                extra={"receiver": name, "action_id": action_id, "attempt": attempts, "retry_in": round(delay, 3),
                       "error": error},
            )  # fmt: skip
        return False

    async def _give_up(self, name: str, action_id: int, rows: list[OutboxRow], why: str) -> None:
        await self.journal.notices_done([([r.id for r in rows], None)], GAVE_UP)
        self.metrics.count(name, GAVE_UP)
        log.error("notification given up", extra={"receiver": name, "action_id": action_id, "error": why})

    async def _hold(self, delay: float, groups: list[Group]) -> None:
        """Over the rate limit: these wait for the window, then go in one digest."""
        ids = [r.id for _, rows in groups for r in rows]
        await self.journal.notices_later(ids, delay, failed=False, held=True)

    async def _later(self, groups: list[Group], delay: float) -> None:
        """Not tried this round (the receiver just failed, or the round ran long): given back as they were."""
        ids = [r.id for _, rows in groups for r in rows]
        await self.journal.notices_later(ids, delay, failed=False, held=False)


def _failure(exc: Exception) -> tuple[str, bool, float | None]:
    """What a failed send says: its error (never a URL), whether it is permanent, the receiver's Retry-After."""
    if isinstance(exc, DeliveryError):
        return str(exc), exc.permanent, exc.retry_after
    # A transport's bug or an unexpected client error: its text may quote a URL, its kind never does.
    return f"unexpected {type(exc).__name__}", False, None
