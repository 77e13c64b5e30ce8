"""What the dispatcher runs: a journaled decision as a job, what its outcome is about, and the context an
action's run gets."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from responder.aws import RdsApi
from responder.config import Playbook
from responder.core import Target
from responder.effects import EffectGate
from responder.journal import Journal
from responder.journal.search import ActionFilter, find
from responder.metrics import ResponderMetrics
from responder.outcomes import Outcome


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
    mode: str  # as journaled: what the decision runs in, whatever the configuration says now

    @property
    def subject(self) -> Subject:
        pb = self.playbook
        return Subject(
            self.action_id,
            pb.name,
            pb.action,
            self.mode,
            self.alertname,
            self.fingerprint,
            self.target.describe(),  # as journaled: one form on every decision line, whatever the playbook
        )


@dataclass(frozen=True)
class RunContext:
    """The `ActionContext` one run of an action gets."""

    action_id: int
    playbook: str
    target: Target
    params: Any
    log: logging.LoggerAdapter[logging.Logger]
    rds: RdsApi | None
    action: str
    journal: Journal
    metrics: ResponderMetrics
    gate: EffectGate

    @property
    def dry_run(self) -> bool:
        return self.gate.dry_run

    async def save_plan(self, plan: dict[str, Any]) -> None:
        await self.gate.save_plan(plan)

    async def history(self, outcome: Outcome, since: float) -> list[float]:
        return await self.journal.history(self.action, self.target.key, outcome, since)

    async def journal_rows(self, action: str, since: float, until: float) -> list[dict[str, Any]]:
        return await find(self.journal, ActionFilter(action=action, since=since, until=until, limit=1000))

    def count(self, counter: str, amount: float = 1.0) -> None:
        if counter not in self.metrics.counters:
            raise KeyError(f"counter {counter!r} is not declared by action {self.action!r}")
        self.metrics.counters[counter].inc(amount)
