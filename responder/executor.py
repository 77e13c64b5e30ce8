"""Runs journaled actions after the webhook has answered: tracked tasks, bounded concurrency, timeouts.

Every action goes queued -> running (the journal checks cooldown and the daily cap in that transition) ->
done with one outcome. At shutdown the executor waits for running actions (up to `shutdown_timeout`); what
never started, or had to be cut, is journaled `interrupted`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from responder.aws import RdsApi
from responder.config import Config, Playbook
from responder.guards import resolve_target
from responder.journal import Journal, JournalUnavailable
from responder.metrics import ResponderMetrics
from responder.playbooks.base import ActionContext, GuardrailRefused, Target

log = logging.getLogger("responder.actions")


@dataclass(frozen=True)
class Job:
    action_id: int
    playbook: Playbook
    target: Target
    alertname: str
    fingerprint: str


class Executor:
    def __init__(
        self, config: Config, journal: Journal, metrics: ResponderMetrics, rds: RdsApi | None
    ) -> None:
        self.config = config
        self.journal = journal
        self.metrics = metrics
        self.rds = rds
        self._sem = asyncio.Semaphore(config.max_concurrent_actions)
        self._tasks: dict[asyncio.Task[None], Job] = {}
        self._started: set[int] = set()
        self._closing = False

    @property
    def busy(self) -> int:
        return len(self._tasks)

    def submit(self, job: Job) -> bool:
        if self._closing:
            return False
        task = asyncio.create_task(self._run(job), name=f"action-{job.action_id}")
        self._tasks[task] = job
        task.add_done_callback(lambda t: self._tasks.pop(t, None))
        return True

    def job_for(
        self, action_id: int, playbook_name: str | None, labels: dict[str, str], fingerprint: str
    ) -> Job | str:
        """The job for a journaled decision; a string says why it cannot run."""
        playbook = next((p for p in self.config.playbooks if p.name == playbook_name), None)
        if playbook is None:
            return f"playbook {playbook_name!r} is no longer configured"
        target = resolve_target(playbook, labels, self.config)
        if target is None:
            return "no configured target matches the alert's labels"
        return Job(action_id, playbook, target, labels.get("alertname", ""), fingerprint)

    def job_from_row(self, row: dict[str, Any]) -> Job | str:
        """Rebuild a job from its journal row (after approval)."""
        return self.job_for(row["id"], row["playbook"], row["alert"]["labels"], row["alert"]["fingerprint"])

    async def shutdown(self, grace: float) -> None:
        self._closing = True
        waiting = [t for t, j in self._tasks.items() if j.action_id not in self._started]
        for task in waiting:
            task.cancel()
        running = list(self._tasks)
        if running:
            log.info("waiting for running actions", extra={"count": len(running)})
            _, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)

    async def _finish(self, job: Job, outcome: str, result: Any, error: str | None) -> None:
        for attempt in range(5):
            try:
                await self.journal.finish(job.action_id, outcome, result, error)
                break
            except JournalUnavailable:
                if attempt == 4:
                    log.error(
                        "cannot journal the outcome", extra={"action_id": job.action_id, "outcome": outcome}
                    )
                    break
                await asyncio.sleep(0.5 * (attempt + 1))
        self.metrics.outcome(job.playbook.name, job.playbook.action, outcome)
        log_decision(
            job.action_id, job.playbook, job.alertname, job.fingerprint, str(job.target.key), outcome, error
        )

    async def _run(self, job: Job) -> None:
        pb = job.playbook
        try:
            async with self._sem:
                claim = await self.journal.claim(
                    job.action_id, pb.name, job.target.key, pb.cooldown, pb.max_per_day
                )
                if not claim.ok:
                    if claim.outcome:
                        self.metrics.outcome(pb.name, pb.action, claim.outcome)
                        log_decision(
                            job.action_id,
                            pb,
                            job.alertname,
                            job.fingerprint,
                            job.target.key,
                            claim.outcome,
                            claim.reason,
                        )
                    return
                self._started.add(job.action_id)
                await self._execute(job)
        except asyncio.CancelledError:
            if job.action_id not in self._started:
                with contextlib.suppress(JournalUnavailable, asyncio.CancelledError):
                    await asyncio.shield(
                        self.journal.finish(
                            job.action_id,
                            "interrupted",
                            None,
                            "the responder stopped before this action started",
                        )
                    )
                self.metrics.outcome(pb.name, pb.action, "interrupted")
            raise
        except JournalUnavailable as exc:
            log.error(
                "journal unavailable, action not started",
                extra={"action_id": job.action_id, "error": str(exc)},
            )
        finally:
            self._started.discard(job.action_id)

    async def _execute(self, job: Job) -> None:
        pb = job.playbook
        bound = logging.LoggerAdapter(
            log, {"action_id": job.action_id, "playbook": pb.name, "action": pb.action}
        )
        ctx = ActionContext(
            action_id=job.action_id,
            playbook=pb.name,
            target=job.target,
            params=pb.params,
            dry_run=pb.mode == "dry-run",
            journal=self.journal,
            metrics=self.metrics,
            log=bound,
            rds=self.rds,
        )
        start = time.monotonic()
        self.metrics.running.inc()
        result: Any = None
        error: str | None = None
        try:
            async with asyncio.timeout(pb.timeout):
                result = await pb.spec.run(ctx)
            outcome = "dry_run" if ctx.dry_run else "succeeded"
        except GuardrailRefused as exc:
            outcome, error = "guardrail", str(exc)
        except TimeoutError:
            outcome, error = "failed", f"timed out after {pb.timeout:g}s"
        except asyncio.CancelledError:
            outcome, error = "interrupted", "the responder stopped while this action was running"
            await asyncio.shield(self._finish(job, outcome, None, error))
            raise
        except Exception as exc:
            outcome, error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self.metrics.running.dec()
            self.metrics.duration.labels(pb.action).observe(time.monotonic() - start)
        await self._finish(job, outcome, result, error)


def log_decision(
    action_id: int,
    playbook: Playbook | None,
    alertname: str,
    fingerprint: str,
    target: str | None,
    outcome: str,
    error: str | None = None,
) -> None:
    """The one structured line per decision."""
    log.info(
        "decision",
        extra={
            "action_id": action_id,
            "playbook": playbook.name if playbook else None,
            "action": playbook.action if playbook else None,
            "mode": playbook.mode if playbook else None,
            "alertname": alertname,
            "fingerprint": fingerprint,
            "target": target,
            "outcome": outcome,
            "reason": error,
        },
    )
