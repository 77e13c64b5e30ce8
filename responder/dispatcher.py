"""The one owner of a decision's way: intake (an alert's) -> accept (journal, then run) -> claim -> run -> finish.

Every decision is journaled before the webhook answers (a schedule's before its tick counts as fired). A queued
one is then run as a tracked task, with bounded concurrency: queued -> running (the journal checks cooldown and
the daily cap in that transition) -> done with one outcome. `record_outcome` is the single place an outcome is
recorded: the journal row (unless the transaction that decided it wrote it), the actions metric and the one
`decision` log line. At shutdown running actions get `shutdown_timeout`; what never started, or had to be cut, is
journaled `interrupted`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import tenacity

from pgwarden.redact import redact
from pgwarden.retry import error_of
from responder.aws import RdsApi
from responder.config import Config
from responder.core import ActionFailed, ActionResult, GuardrailRefused, RdsTarget
from responder.decide import (
    NO_TARGET_REASON,
    RejectedAlert,
    changed_since_decided,
    decisions_for,
    rejected_decision,
    resolve_target,
)
from responder.decision import Decision, ScheduleTrigger
from responder.effects import Authority, EffectGate, EffectRefused
from responder.journal import ActionRow, Claim, Journal, JournalUnavailable
from responder.metrics import ResponderMetrics
from responder.models import Alert
from responder.outcomes import Answer, Outcome, State
from responder.runs import Run, RunContext, logged

log = logging.getLogger("responder.actions")

STOPPED_BEFORE = "the responder stopped before this action started"
STOPPED_WHILE = "the responder stopped while this action was running"
NOT_CLAIMED = (
    "the journal was unavailable when this action was to start: not started, the next delivery decides again"
)
RUN_NOW_LOST = "the answer to this run-now was lost, so it was not started (a press again runs it)"
FINISH_ATTEMPTS = 5  # at shutdown; until then an outcome is retried until the journal is back
BACKOFF_MAX = 5.0
CLAIM_ATTEMPTS = 4
# Alerts (and decisions) handled between two yields to the event loop: a 1 MiB payload never stalls it.
SLICE = 64
PRUNE_EVERY = 60.0


class Dispatcher:
    def __init__(
        self, config: Config, journal: Journal, metrics: ResponderMetrics, rds: RdsApi | None
    ) -> None:
        self.config = config
        self.journal = journal
        self.metrics = metrics
        self.rds = rds
        self._slots = asyncio.Semaphore(config.schema.max_concurrent_actions)
        self._tasks: dict[int, asyncio.Task[None]] = {}  # by action id: one task per decision
        self._started: set[int] = set()
        self._closing = False
        # Called on every housekeeping tick after recovery and expiry (the scheduler and the drill sweeper).
        self.periodic: list[Callable[[], Awaitable[None]]] = []
        self._next_prune = 0.0
        self._instance_changers = tuple(
            sorted({p.action for p in config.all_playbooks if p.spec.changes_instance})
        )

    @property
    def busy(self) -> int:
        return len(self._tasks)

    # ---- intake and approval ------------------------------------------------------------------------------

    async def intake(self, alerts: Sequence[Alert | RejectedAlert]) -> list[Decision]:
        """The webhook's one call: decide every alert's decisions, then `accept` them (JournalUnavailable if the
        journal does not take them). A rejected alert is journaled as `rejected`. A large payload is decided in
        slices, with a yield to the event loop between two slices; the journal writes it off the loop."""
        now = time.time()
        decisions: list[Decision] = []
        for i, alert in enumerate(alerts):
            if i and i % SLICE == 0:
                await asyncio.sleep(0)
            if isinstance(alert, RejectedAlert):
                decisions.append(rejected_decision(alert))
            else:
                decisions.extend(decisions_for(alert, self.config, now))
        journaled = await self.accept(decisions)
        for alert in alerts:
            self.metrics.alerts.labels("rejected" if isinstance(alert, RejectedAlert) else alert.status).inc()
        return journaled

    async def accept(self, decisions: Sequence[Decision]) -> list[Decision]:
        """Journal decisions, an alert's or a schedule's (JournalUnavailable if that fails), then act on them:
        a queued one is run, any other's outcome recorded; in slices with a yield to the event loop between two.
        The decisions as journaled."""
        try:
            journaled = await self.journal.record(decisions) if decisions else []
        except JournalUnavailable as exc:
            self.metrics.journal_up.set(0)
            log.error("journal unavailable", extra={"journal": self.journal.describe(), "error": str(exc)})
            raise
        self.metrics.journal_up.set(1)
        for i, d in enumerate(journaled):
            if i and i % SLICE == 0:
                await asyncio.sleep(0)
            if d.state is State.QUEUED and d.target is not None:
                playbook = self.config.playbook(d.playbook)
                if playbook is not None:
                    self.submit(Run(d, playbook, d.target))
                    continue
            outcome = Outcome.PENDING if d.state is State.PENDING else d.outcome
            if outcome is not None:
                await self.record_outcome(d, outcome, error=d.error, journaled=True)
        return journaled

    async def decide(self, action_id: int, approve: bool, who: str, nonce: str | None = None) -> Answer:
        """Approve or reject a pending action (a link's `nonce` is spent by it); run it once approved by as
        many different approvers as its playbook needs."""
        needed = {p.name: p.approvals for p in self.config.all_playbooks}
        approvers = {p.name for p in self.config.principals if p.can_approve}  # whose approvals count
        timeout = self.config.schema.approval_timeout
        # The row is read in the deciding transaction: an approval committed is always run (or recorded).
        answer, row = await self.journal.decide_and_get(
            action_id, approve, who, timeout, needed, nonce, approvers
        )
        if answer not in (Answer.APPROVED, Answer.REJECTED, Answer.EXPIRED) or row is None:
            return answer
        if answer is not Answer.APPROVED:
            await self.record_outcome(row, Outcome(answer.value), journaled=True)
            return answer
        return await self._start(row) or answer

    async def _start(self, row: ActionRow) -> Answer | None:
        """Run a queued row as its playbook and labels now resolve; Answer.EXPIRED when the configuration
        changed since it was decided (the approver approved what the row shows, not something else)."""
        playbook = self.config.playbook(row.playbook)
        target = resolve_target(playbook, row.labels, self.config) if playbook is not None else None
        if playbook is None or target is None:
            reason = NO_TARGET_REASON if playbook else f"playbook {row.playbook!r} is no longer configured"
            await self.record_outcome(row, Outcome.NO_TARGET, error=reason)
        elif (changed := changed_since_decided(row, playbook, target)) is not None:
            await self.record_outcome(row, Outcome.EXPIRED, error=changed)
            return Answer.EXPIRED
        else:
            self.submit(Run(row.decision(target), playbook, target))
        return None

    # ---- housekeeping -------------------------------------------------------------------------------------

    async def recover(self, first: bool = False) -> None:
        """Heartbeat; what dead replicas (at start-up with SQLite: any earlier process) left open is interrupted."""
        stale_after = self.config.schema.replica_timeout
        for row in await self.journal.heartbeat(stale_after, first=first):
            await self.record_outcome(row, Outcome.INTERRUPTED, journaled=True)
        self.metrics.journal_up.set(1)

    async def revive(self) -> None:
        """Run this replica's queued decisions no task of it holds, untouched for `replica_timeout` (committed, the
        answer lost; no other replica takes a live one's work), through the claim; a run-now press so lost is
        journaled `interrupted` (a retried delivery or tick is a duplicate of it, a press again is not)."""
        for row in await self.journal.orphaned(self.config.schema.replica_timeout):
            if row.id in self._tasks or self._closing:
                continue
            trigger = row.trigger
            if isinstance(trigger, ScheduleTrigger) and trigger.run_now and row.decided_by is None:
                # The operator was told the press failed, and a press again is a decision of its own.
                await self.record_outcome(row, Outcome.INTERRUPTED, error=RUN_NOW_LOST)
                continue
            log.warning("queued decision with no task: starting it", extra=logged(row))
            await self._start(row)

    async def expire(self) -> None:
        for row in await self.journal.expire_pending(self.config.schema.approval_timeout):
            await self.record_outcome(row, Outcome.EXPIRED, error="approval window expired", journaled=True)

    async def prune(self) -> None:
        """Retention, once a minute (each tick while a backlog lasts); `pgwarden_responder_journal_rows`."""
        if time.monotonic() < self._next_prune:
            return
        deleted, backlog = await self.journal.prune(self.config.schema.journal_retention)
        self._next_prune = time.monotonic() + (0.0 if backlog else PRUNE_EVERY)
        if deleted:
            log.info("journal pruned", extra={"rows": deleted})
        self.metrics.journal_rows.set(await self.journal.rows())

    async def housekeeping(self) -> None:
        """Forever: heartbeat and recovery, expiry of stale approvals, journal retention, then the `periodic`
        jobs. It survives any error (log, back off, retry): if it died, the heartbeats would stop and the other
        replicas would interrupt this live replica's actions."""
        period = max(0.2, min(5.0, self.config.schema.replica_timeout / 3))

        def failed(state: tenacity.RetryCallState) -> None:
            if isinstance(exc := error_of(state), JournalUnavailable):
                self.metrics.journal_up.set(0)
                log.warning("journal unavailable", extra={"error": str(exc)})
            else:
                log.error("housekeeping failed; retrying", exc_info=exc)

        retrying = tenacity.AsyncRetrying(  # after n failures in a row: period x 2^n, at most BACKOFF_MAX
            retry=tenacity.retry_if_exception_type(Exception),
            wait=tenacity.wait_exponential(multiplier=2 * period, max=BACKOFF_MAX),
            before_sleep=failed,
        )
        while True:
            await asyncio.sleep(period)
            async for attempt in retrying:
                with attempt:
                    await self.recover()
                    await self.expire()
                    await self.revive()
                    await self.prune()
                    for job in self.periodic:
                        await job()

    # ---- running ------------------------------------------------------------------------------------------

    def submit(self, run: Run) -> bool:
        if self._closing or run.action_id in self._tasks:
            return False  # a task holds it already: revive started it while its approval's answer was late
        task = asyncio.create_task(self._run(run), name=f"action-{run.action_id}")
        self._tasks[run.action_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run.action_id, None))
        return True

    async def shutdown(self, grace: float) -> None:
        self._closing = True
        for action_id, task in list(self._tasks.items()):
            if action_id not in self._started:
                task.cancel()
        running = list(self._tasks.values())
        if running:
            log.info("waiting for running actions", extra={"count": len(running)})
            _, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)

    async def _run(self, run: Run) -> None:
        decision, claimed = run.decision, None
        try:
            async with self._slots:
                claimed = await self._claim(run)
                if claimed is not None and claimed.state is State.RUNNING:
                    self._started.add(run.action_id)
                    outcome, result, error = await self._execute(run)
        except JournalUnavailable:
            # never claimed: the decision must not stay queued, nor block the next delivery
            await self.record_outcome(decision, Outcome.INTERRUPTED, error=NOT_CLAIMED, release_key=True)
            return
        except asyncio.CancelledError:
            error = STOPPED_WHILE if run.action_id in self._started else STOPPED_BEFORE
            await asyncio.shield(self.record_outcome(decision, Outcome.INTERRUPTED, error=error))
            raise
        finally:
            self._started.discard(run.action_id)
        if claimed is None:
            return  # no longer queued: whatever ended it recorded its outcome
        if claimed.state is not State.RUNNING:
            if claimed.outcome is not None:  # refused by a guard (cooldown, cap, one change at a time)
                await self.record_outcome(decision, claimed.outcome, error=claimed.error, journaled=True)
        else:
            await self.record_outcome(decision, outcome, result=result, error=error)

    async def _claim(self, run: Run) -> ActionRow | None:
        """The claim (see `Journal.claim`), retried with backoff while the journal is unavailable;
        JournalUnavailable if it never answered."""
        pb = run.playbook
        claim = Claim(run.action_id, pb.name, run.target.key, pb.schema.cooldown, pb.schema.max_per_day,
                      release_key=pb.repeat == "while_firing", exclusive=self._instance_changers)  # fmt: skip

        def unavailable(state: tenacity.RetryCallState) -> None:
            error = str(error_of(state))
            extra = {"action_id": run.action_id, "attempt": state.attempt_number, "error": error}
            log.warning("journal unavailable, action not started yet", extra=extra)

        async for attempt in tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(JournalUnavailable),
            wait=tenacity.wait_exponential(multiplier=0.25),  # 0.25 s, 0.5 s, 1 s
            stop=tenacity.stop_after_attempt(CLAIM_ATTEMPTS),
            after=unavailable,
            reraise=True,
        ):
            with attempt:
                claimed = await self.journal.claim(claim)
                if claimed is None and attempt.retry_state.attempt_number > 1:
                    # An attempt that failed may have committed, its answer lost: then the claim is this task's
                    # (one task per decision; no one else makes a row running under this live replica's name).
                    row = await self.journal.get(run.action_id)
                    if row is not None and row.state is State.RUNNING and row.owner == self.journal.owner:
                        return row
                return claimed
        raise AssertionError("unreachable")  # tenacity re-raises after the last attempt

    async def _execute(self, run: Run) -> tuple[Outcome, ActionResult | None, str | None]:
        pb = run.playbook
        target = run.target
        authority = Authority(
            run.action_id,
            pb.action,
            run.mode,
            instance=target.identifier if isinstance(target, RdsTarget) else None,
            region=target.region if isinstance(target, RdsTarget) else None,
        )
        gate = EffectGate(authority, self.journal)
        ctx = RunContext(
            action_id=run.action_id,
            playbook=pb.name,
            target=target,
            params=pb.params,
            gate=gate,
            log=logging.LoggerAdapter(
                log, {"action_id": run.action_id, "playbook": pb.name, "action": pb.action}
            ),
            rds=self.rds,
            action=pb.action,
            journal=self.journal,
            metrics=self.metrics,
        )
        start = time.monotonic()
        self.metrics.running.inc()
        try:
            async with asyncio.timeout(pb.schema.timeout):
                result = await pb.spec.run(ctx)
            return (Outcome.DRY_RUN if ctx.dry_run else Outcome.SUCCEEDED), result, None
        except (GuardrailRefused, EffectRefused) as exc:
            return Outcome.GUARDRAIL, None, str(exc)
        except ActionFailed as exc:
            return Outcome.FAILED, exc.result, str(exc)
        except TimeoutError:
            return Outcome.FAILED, None, f"timed out after {pb.schema.timeout:g}s"
        except Exception as exc:
            return Outcome.FAILED, None, f"{type(exc).__name__}: {exc}"
        finally:
            self.metrics.running.dec()
            self.metrics.duration.labels(pb.action).observe(time.monotonic() - start)

    # ---- the one place an outcome is recorded -------------------------------------------------------------

    async def record_outcome(
        self,
        about: Decision | ActionRow,
        outcome: Outcome,
        *,
        error: str | None = None,
        result: Any = None,
        journaled: bool = False,
        release_key: bool = False,
    ) -> None:
        """Journal the outcome of a journaled decision (unless `journaled`: the deciding transaction wrote it),
        count it, log it. `release_key`: the decision never started, and a later delivery of its alert decides
        again."""
        fields = logged(about)
        if not journaled:
            await self._journal_finish(fields["action_id"], outcome, result, error, release_key)
        if about.playbook is not None:  # a rejected alert is counted in alerts_total{status="rejected"}
            self.metrics.outcome(about.playbook, about.action, outcome)
        log.log(
            logging.WARNING if outcome is Outcome.INTERRUPTED else logging.INFO,
            "decision",
            extra={**fields, "outcome": outcome.value, "reason": redact(error)},
        )

    async def _journal_finish(
        self, action_id: int, outcome: Outcome, result: Any, error: str | None, release_key: bool
    ) -> None:
        """Retried with backoff until the journal takes it (a row must not stay `running`); at shutdown only
        FINISH_ATTEMPTS times, and what is left open then is `interrupted` by recovery."""

        def kept(state: tenacity.RetryCallState) -> None:
            if state.attempt_number == 1:
                log.warning(
                    "journal unavailable, outcome kept until it is back",
                    extra={"action_id": action_id, "outcome": outcome, "error": str(error_of(state))},
                )

        def given_up(state: tenacity.RetryCallState) -> None:
            log.error("cannot journal the outcome", extra={"action_id": action_id, "outcome": outcome})

        async for attempt in tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(JournalUnavailable),
            wait=tenacity.wait_incrementing(start=0.5, increment=0.5, max=BACKOFF_MAX),  # 0.5 s, 1 s, ...
            stop=lambda state: self._closing and state.attempt_number >= FINISH_ATTEMPTS,
            before_sleep=kept,
            retry_error_callback=given_up,
        ):
            with attempt:
                await self.journal.finish(action_id, outcome, result, error, release_key)
                if (attempts := attempt.retry_state.attempt_number) > 1:
                    log.info("outcome journaled", extra={"action_id": action_id, "attempts": attempts})
