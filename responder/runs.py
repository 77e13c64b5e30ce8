"""What the dispatcher runs: a journaled decision as a `Run`, and the context (`RunContext`, the core's
`ActionContext`) the action gets while it runs, and what its log lines say it is about (`logged`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from responder.aws import RdsApi
from responder.config import Playbook
from responder.core import Target
from responder.decision import Decision
from responder.effects import EffectGate
from responder.journal import ActionRow, Journal
from responder.journal.rows import trigger_columns
from responder.metrics import ResponderMetrics
from responder.outcomes import Outcome


@dataclass(frozen=True, slots=True)
class Run:
    """A journaled decision to run: claimed (queued -> running) by the dispatcher, then executed with a
    `RunContext`. `decision.mode` is as journaled: what it runs in, whatever the configuration says now."""

    decision: Decision
    playbook: Playbook
    target: Target

    @property
    def action_id(self) -> int:
        return self.decision.action_id

    @property
    def mode(self) -> str:
        return self.decision.mode or self.playbook.mode


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
        """As `GET /actions` shows them: an action reads the same rows an operator does."""
        return [row.to_json() for row in await self.journal.journaled(action, since, until)]

    def count(self, counter: str, amount: float = 1.0) -> None:
        if counter not in self.metrics.counters:
            raise KeyError(f"counter {counter!r} is not declared by action {self.action!r}")
        self.metrics.counters[counter].inc(amount)


def logged(about: Decision | ActionRow) -> dict[str, Any]:
    """What the dispatcher's log lines (the `decision` line) say a decision is about (the target as the journal
    shows it)."""
    if isinstance(about, ActionRow):
        alertname, fingerprint, target = about.alertname, about.fingerprint, about.target
    else:
        alertname, fingerprint, *_ = trigger_columns(about.trigger)
        target = about.target.describe() if about.target is not None else None
    return {
        "action_id": about.id,
        "playbook": about.playbook,
        "action": about.action,
        "mode": about.mode,
        "alertname": alertname,
        "fingerprint": fingerprint,
        "target": target,
    }
