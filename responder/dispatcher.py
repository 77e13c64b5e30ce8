"""The one owner of a decision's way: intake -> journal -> submit -> claim -> run -> finish.

Every decision is journaled before the webhook answers. A queued one is then run as a tracked task, with
bounded concurrency: queued -> running (the journal checks cooldown and the daily cap in that transition) ->
done with one outcome. `record_outcome` is the single place an outcome is recorded: the journal row (unless the
transaction that decided it wrote it), the `pgwarden_responder_actions_total` metric and the one `decision`
log line. At shutdown running actions get `shutdown_timeout`; what never started, or had to be cut, is
journaled `interrupted`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from responder.aws import RdsApi
from responder.config import Config, Playbook
from responder.core import ActionFailed, ActionResult, GuardrailRefused, Target
from responder.guards import NO_TARGET_REASON, Decision, decide, resolve_target
from responder.journal import Journal, JournalUnavailable, Recorded
from responder.journal.search import ActionFilter, find
from responder.metrics import ResponderMetrics
from responder.models import Alert
from responder.outcomes import Answer, Outcome, State

log = logging.getLogger("responder.actions")

STOPPED_BEFORE = "the responder stopped before this action started"
STOPPED_WHILE = "the responder stopped while this action was running"
FINISH_ATTEMPTS = 5


@dataclass(frozen=True)
class Subject:
    """What an outcome is about, as the metric and the decision line name it."""

    action_id: int
    playbook: str | None
    action: str | None
    mode: str | None = None
    alertname: str | None = None
    fingerprint: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class Job:
    """A journaled decision to run: its playbook and the target resolved for it."""

    action_id: int
    playbook: Playbook
    target: Target
    alertname: str
    fingerprint: str

    @property
    def subject(self) -> Subject:
        pb = self.playbook
        return Subject(
            self.action_id, pb.name, pb.action, pb.mode, self.alertname, self.fingerprint, self.target.key
        )


@dataclass(frozen=True)
class RunContext:
    """The `ActionContext` one run of an action gets."""

    action_id: int
    playbook: str
    target: Target
    params: Any
    dry_run: bool
    log: logging.LoggerAdapter[logging.Logger]
    rds: RdsApi | None
    action: str
    journal: Journal
    metrics: ResponderMetrics

    async def save_plan(self, plan: dict[str, Any]) -> None:
        await self.journal.set_plan(self.action_id, plan)

    async def history(self, outcome: Outcome, since: float) -> list[float]:
        return await self.journal.history(self.action, self.target.key, outcome, since)

    async def journal_rows(self, action: str, since: float, until: float) -> list[dict[str, Any]]:
        return await find(self.journal, ActionFilter(action=action, since=since, until=until, limit=1000))

    def count(self, counter: str, amount: float = 1.0) -> None:
        if counter not in self.metrics.counters:
            raise KeyError(f"counter {counter!r} is not declared by action {self.action!r}")
        self.metrics.counters[counter].inc(amount)


class Dispatcher:
    def __init__(
        self, config: Config, journal: Journal, metrics: ResponderMetrics, rds: RdsApi | None
    ) -> None:
        self.config = config
        self.journal = journal
        self.metrics = metrics
        self.rds = rds
        self._slots = asyncio.Semaphore(config.schema.max_concurrent_actions)
        self._tasks: dict[asyncio.Task[None], Job] = {}
        self._started: set[int] = set()
        self._closing = False
        # Called on every housekeeping tick after recovery and expiry (the scheduler and the drill sweeper).
        self.periodic: list[Callable[[], Awaitable[None]]] = []

    @property
    def busy(self) -> int:
        return len(self._tasks)

    # ---- intake and approval ------------------------------------------------------------------------------

    async def intake(self, alerts: Sequence[Alert]) -> list[Recorded]:
        """Decide and journal every alert's decisions (JournalUnavailable if that fails), then act on them."""
        recorded = await self.record_decisions([d for alert in alerts for d in decide(alert, self.config)])
        for alert in alerts:
            self.metrics.alerts.labels(alert.status).inc()
        return recorded

    async def record_decisions(self, decisions: Sequence[Decision]) -> list[Recorded]:
        """Journal decisions, an alert's or a schedule's (JournalUnavailable if that fails), then act on them."""
        try:
            recorded = await self.journal.record([d.record for d in decisions]) if decisions else []
        except JournalUnavailable:
            self.metrics.journal_up.set(0)
            raise
        self.metrics.journal_up.set(1)
        for decision, r in zip(decisions, recorded, strict=True):
            d = r.decision
            if r.state is State.QUEUED and decision.playbook is not None and decision.target is not None:
                self.submit(Job(r.id, decision.playbook, decision.target, d.alertname, d.fingerprint))
                continue
            subject = Subject(r.id, d.playbook, d.action, d.mode, d.alertname, d.fingerprint, d.target)
            outcome = Outcome.PENDING if r.state is State.PENDING else r.outcome
            if outcome is not None:
                await self.record_outcome(subject, outcome, error=d.error, journaled=True)
        return recorded

    async def decide(self, action_id: int, approve: bool, who: str) -> Answer:
        """Approve or reject a pending action; an approved one is submitted."""
        answer = await self.journal.decide(action_id, approve, who, self.config.schema.approval_timeout)
        if answer not in (Answer.APPROVED, Answer.REJECTED, Answer.EXPIRED):
            return answer
        row = await self.journal.get(action_id)
        if row is None:
            return answer
        alert = row["alert"]
        subject = Subject(
            action_id, row["playbook"], row["action"], row["mode"], alert["alertname"], alert["fingerprint"]
        )
        if answer is not Answer.APPROVED:
            await self.record_outcome(subject, Outcome(answer.value), journaled=True)
            return answer
        playbook = self.config.playbook(row["playbook"])
        target = resolve_target(playbook, alert["labels"], self.config) if playbook is not None else None
        if playbook is None or target is None:
            reason = NO_TARGET_REASON if playbook else f"playbook {row['playbook']!r} is no longer configured"
            await self.record_outcome(subject, Outcome.NO_TARGET, error=reason)
        else:
            self.submit(Job(action_id, playbook, target, alert["alertname"], alert["fingerprint"]))
        return answer

    # ---- housekeeping -------------------------------------------------------------------------------------

    async def recover(self, first: bool = False) -> None:
        """Heartbeat; what dead replicas (at start-up with SQLite: any earlier process) left open is interrupted."""
        stale_after = self.config.schema.replica_timeout
        for action_id, playbook, action, target in await self.journal.heartbeat(stale_after, first=first):
            subject = Subject(action_id, playbook, action, target=target)
            await self.record_outcome(subject, Outcome.INTERRUPTED, journaled=True)
        self.metrics.journal_up.set(1)

    async def expire(self) -> None:
        for action_id, playbook, action in await self.journal.expire_pending(
            self.config.schema.approval_timeout
        ):
            subject = Subject(action_id, playbook, action)
            await self.record_outcome(
                subject, Outcome.EXPIRED, error="approval window expired", journaled=True
            )

    async def housekeeping(self) -> None:
        """Forever: heartbeat and recovery, expiry of stale approvals, then the `periodic` jobs."""
        period = max(0.2, min(5.0, self.config.schema.replica_timeout / 3))
        while True:
            await asyncio.sleep(period)
            try:
                await self.recover()
                await self.expire()
                for job in self.periodic:
                    await job()
            except JournalUnavailable as exc:
                self.metrics.journal_up.set(0)
                log.warning("journal unavailable", extra={"error": str(exc)})

    # ---- running ------------------------------------------------------------------------------------------

    def submit(self, job: Job) -> bool:
        if self._closing:
            return False
        task = asyncio.create_task(self._run(job), name=f"action-{job.action_id}")
        self._tasks[task] = job
        task.add_done_callback(lambda t: self._tasks.pop(t, None))
        return True

    async def shutdown(self, grace: float) -> None:
        self._closing = True
        for task, job in list(self._tasks.items()):
            if job.action_id not in self._started:
                task.cancel()
        running = list(self._tasks)
        if running:
            log.info("waiting for running actions", extra={"count": len(running)})
            _, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)

    async def _run(self, job: Job) -> None:
        pb = job.playbook
        try:
            async with self._slots:
                claim = await self.journal.claim(
                    job.action_id, pb.name, job.target.key, pb.schema.cooldown, pb.schema.max_per_day
                )
                if not claim.ok:
                    if claim.outcome is not None:
                        await self.record_outcome(
                            job.subject, claim.outcome, error=claim.reason, journaled=True
                        )
                    return
                self._started.add(job.action_id)
                outcome, result, error = await self._execute(job)
        except asyncio.CancelledError:
            error = STOPPED_WHILE if job.action_id in self._started else STOPPED_BEFORE
            await asyncio.shield(self.record_outcome(job.subject, Outcome.INTERRUPTED, error=error))
            raise
        except JournalUnavailable as exc:
            log.error(
                "journal unavailable, action not started",
                extra={"action_id": job.action_id, "error": str(exc)},
            )
            return
        finally:
            self._started.discard(job.action_id)
        await self.record_outcome(job.subject, outcome, result=result, error=error)

    async def _execute(self, job: Job) -> tuple[Outcome, ActionResult | None, str | None]:
        pb = job.playbook
        ctx = RunContext(
            action_id=job.action_id,
            playbook=pb.name,
            target=job.target,
            params=pb.params,
            dry_run=pb.mode == "dry-run",
            log=logging.LoggerAdapter(
                log, {"action_id": job.action_id, "playbook": pb.name, "action": pb.action}
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
        except GuardrailRefused as exc:
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
        subject: Subject,
        outcome: Outcome,
        *,
        error: str | None = None,
        result: Any = None,
        journaled: bool = False,
    ) -> None:
        """Journal the outcome (unless `journaled`: the deciding transaction wrote it), count it, log it."""
        if not journaled:
            await self._journal_finish(subject.action_id, outcome, result, error)
        self.metrics.outcome(subject.playbook, subject.action, outcome)
        log.log(
            logging.WARNING if outcome is Outcome.INTERRUPTED else logging.INFO,
            "decision",
            extra={
                "action_id": subject.action_id,
                "playbook": subject.playbook,
                "action": subject.action,
                "mode": subject.mode,
                "alertname": subject.alertname,
                "fingerprint": subject.fingerprint,
                "target": subject.target,
                "outcome": outcome.value,
                "reason": error,
            },
        )

    async def _journal_finish(self, action_id: int, outcome: Outcome, result: Any, error: str | None) -> None:
        for attempt in range(FINISH_ATTEMPTS):
            try:
                await self.journal.finish(action_id, outcome, result, error)
                return
            except JournalUnavailable:
                if attempt == FINISH_ATTEMPTS - 1:
                    log.error(
                        "cannot journal the outcome", extra={"action_id": action_id, "outcome": outcome}
                    )
                    return
                await asyncio.sleep(0.5 * (attempt + 1))
