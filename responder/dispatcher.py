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
from typing import Any

from pgwarden.redact import redact
from responder.aws import RdsApi
from responder.config import Config
from responder.core import ActionFailed, ActionResult, GuardrailRefused, RdsTarget
from responder.effects import Authority, EffectGate, EffectRefused
from responder.guards import (
    NO_TARGET_REASON,
    Decision,
    RejectedAlert,
    decide,
    rejected_decision,
    resolve_target,
)
from responder.jobs import Job, RunContext, Subject
from responder.journal import ClaimResult, Journal, JournalUnavailable, Recorded
from responder.metrics import ResponderMetrics
from responder.models import Alert
from responder.outcomes import Answer, Outcome, State

log = logging.getLogger("responder.actions")

STOPPED_BEFORE = "the responder stopped before this action started"
STOPPED_WHILE = "the responder stopped while this action was running"
NOT_CLAIMED = (
    "the journal was unavailable when this action was to start: not started, the next delivery decides again"
)
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
        self._tasks: dict[asyncio.Task[None], Job] = {}
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

    async def intake(self, alerts: Sequence[Alert | RejectedAlert]) -> list[Recorded]:
        """Decide and journal every alert's decisions (JournalUnavailable if that fails), then act on them. A
        rejected alert is journaled as `rejected`. A large payload is handled in slices, with a yield to the
        event loop between two slices; the journal writes it off the loop."""
        now = time.time()
        decisions: list[Decision] = []
        for i, alert in enumerate(alerts):
            if i and i % SLICE == 0:
                await asyncio.sleep(0)
            if isinstance(alert, RejectedAlert):
                decisions.append(rejected_decision(alert))
            else:
                decisions.extend(decide(alert, self.config, now))
        recorded = await self.record_decisions(decisions)
        for alert in alerts:
            self.metrics.alerts.labels("rejected" if isinstance(alert, RejectedAlert) else alert.status).inc()
        return recorded

    async def record_decisions(self, decisions: Sequence[Decision]) -> list[Recorded]:
        """Journal decisions, an alert's or a schedule's (JournalUnavailable if that fails), then act on them,
        in slices with a yield to the event loop between two."""
        try:
            recorded = await self.journal.record([d.record for d in decisions]) if decisions else []
        except JournalUnavailable:
            self.metrics.journal_up.set(0)
            raise
        self.metrics.journal_up.set(1)
        for i, (decision, r) in enumerate(zip(decisions, recorded, strict=True)):
            if i and i % SLICE == 0:
                await asyncio.sleep(0)
            d = r.decision
            if r.state is State.QUEUED and decision.playbook is not None and decision.target is not None:
                mode = d.mode or decision.playbook.mode
                self.submit(Job(r.id, decision.playbook, decision.target, d.alertname, d.fingerprint, mode))
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
            action_id,
            row["playbook"],
            row["action"],
            row["mode"],
            alert["alertname"],
            alert["fingerprint"],
            row["target"],
        )
        if answer is not Answer.APPROVED:
            await self.record_outcome(subject, Outcome(answer.value), journaled=True)
            return answer
        playbook = self.config.playbook(row["playbook"])
        target = resolve_target(playbook, alert["labels"], self.config) if playbook is not None else None
        if playbook is None or target is None:
            reason = NO_TARGET_REASON if playbook else f"playbook {row['playbook']!r} is no longer configured"
            await self.record_outcome(subject, Outcome.NO_TARGET, error=reason)
        elif (
            changed := _changed_since_decided(row, playbook.mode, playbook.action, target.describe())
        ) is not None:
            # The approver approved what the row shows; a config changed since then would run something else.
            await self.record_outcome(subject, Outcome.EXPIRED, error=changed)
            return Answer.EXPIRED
        else:
            job = Job(action_id, playbook, target, alert["alertname"], alert["fingerprint"], row["mode"])
            self.submit(job)
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
        failures = 0
        while True:
            await asyncio.sleep(min(BACKOFF_MAX, period * 2**failures))
            try:
                await self.recover()
                await self.expire()
                await self.prune()
                for job in self.periodic:
                    await job()
                failures = 0
            except JournalUnavailable as exc:
                failures = min(failures + 1, 6)
                self.metrics.journal_up.set(0)
                log.warning("journal unavailable", extra={"error": str(exc)})
            except Exception:
                failures = min(failures + 1, 6)
                log.exception("housekeeping failed; retrying")

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
        try:
            async with self._slots:
                claim = await self._claim(job)
                if claim is not None and claim.ok:
                    self._started.add(job.action_id)
                    outcome, result, error = await self._execute(job)
        except asyncio.CancelledError:
            error = STOPPED_WHILE if job.action_id in self._started else STOPPED_BEFORE
            await asyncio.shield(self.record_outcome(job.subject, Outcome.INTERRUPTED, error=error))
            raise
        finally:
            self._started.discard(job.action_id)
        if claim is None:  # never claimed: the decision must not stay queued, nor block the next delivery
            await self.record_outcome(job.subject, Outcome.INTERRUPTED, error=NOT_CLAIMED, release_key=True)
        elif not claim.ok:
            if claim.outcome is not None:
                await self.record_outcome(job.subject, claim.outcome, error=claim.reason, journaled=True)
        else:
            await self.record_outcome(job.subject, outcome, result=result, error=error)

    async def _claim(self, job: Job) -> ClaimResult | None:
        """The claim, retried with backoff while the journal is unavailable; None if it never answered."""
        pb = job.playbook
        for attempt in range(CLAIM_ATTEMPTS):
            args = (job.action_id, pb.name, job.target.key, pb.schema.cooldown, pb.schema.max_per_day)
            try:
                return await self.journal.claim(
                    *args, release_key=pb.repeat == "while_firing", exclusive=self._instance_changers
                )
            except JournalUnavailable as exc:
                log.warning(
                    "journal unavailable, action not started yet",
                    extra={"action_id": job.action_id, "attempt": attempt + 1, "error": str(exc)},
                )
                if attempt < CLAIM_ATTEMPTS - 1:
                    await asyncio.sleep(0.25 * 2**attempt)
        return None

    async def _execute(self, job: Job) -> tuple[Outcome, ActionResult | None, str | None]:
        pb = job.playbook
        target = job.target
        authority = Authority(
            job.action_id,
            pb.action,
            job.mode,
            instance=target.identifier if isinstance(target, RdsTarget) else None,
            region=target.region if isinstance(target, RdsTarget) else None,
        )
        gate = EffectGate(authority, self.journal)
        ctx = RunContext(
            action_id=job.action_id,
            playbook=pb.name,
            target=target,
            params=pb.params,
            gate=gate,
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
        subject: Subject,
        outcome: Outcome,
        *,
        error: str | None = None,
        result: Any = None,
        journaled: bool = False,
        release_key: bool = False,
    ) -> None:
        """Journal the outcome (unless `journaled`: the deciding transaction wrote it), count it, log it.
        `release_key`: the decision never started, and a later delivery of its alert decides again."""
        if not journaled:
            await self._journal_finish(subject.action_id, outcome, result, error, release_key)
        if subject.playbook is not None:  # a rejected alert is counted in alerts_total{status="rejected"}
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
                "reason": redact(error),
            },
        )

    async def _journal_finish(
        self, action_id: int, outcome: Outcome, result: Any, error: str | None, release_key: bool
    ) -> None:
        """Retried with backoff until the journal takes it (a row must not stay `running`); at shutdown only
        FINISH_ATTEMPTS times, and what is left open then is `interrupted` by recovery."""
        attempt = 0
        while True:
            try:
                await self.journal.finish(action_id, outcome, result, error, release_key)
                if attempt:
                    log.info("outcome journaled", extra={"action_id": action_id, "attempts": attempt + 1})
                return
            except JournalUnavailable as exc:
                attempt += 1
                if self._closing and attempt >= FINISH_ATTEMPTS:
                    log.error(
                        "cannot journal the outcome", extra={"action_id": action_id, "outcome": outcome}
                    )
                    return
                if attempt == 1:
                    log.warning(
                        "journal unavailable, outcome kept until it is back",
                        extra={"action_id": action_id, "outcome": outcome, "error": str(exc)},
                    )
                await asyncio.sleep(min(BACKOFF_MAX, 0.5 * attempt))


def _changed_since_decided(row: dict[str, Any], mode: str, action: str, target: str) -> str | None:
    """Why an approved decision must not run as the configuration now stands, or None."""
    if row["mode"] != mode:
        return f"the playbook's mode changed from {row['mode']} to {mode} since this was decided: not run"
    if row["action"] != action:
        return (
            f"the playbook's action changed from {row['action']} to {action} since this was decided: not run"
        )
    if row.get("target") and row["target"] != target:
        return f"the target changed from {row['target']} to {target} since this was decided: not run"
    return None
