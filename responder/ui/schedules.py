"""What the console needs of a scheduler: its schedules' status and "run now". The app registers one with
`responder.ui.console.register_schedules(app, source)` (the responder's scheduler as a `SchedulerSource`);
without one the page says no schedules are configured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from responder.scheduling.scheduler import Scheduler


@dataclass(frozen=True)
class ScheduleStatus:
    """One schedule, with exactly the keys of `GET /schedules` (times as ISO 8601 strings)."""

    name: str
    cron: str
    action: str
    mode: str
    target: str | None = None
    next_run: str | None = None
    last_run: str | None = None
    last_outcome: str | None = None
    last_decision_id: int | None = None
    last_state: str | None = None


class ScheduleSource(Protocol):
    async def statuses(self) -> list[ScheduleStatus]:
        """Every configured schedule, in configuration order."""

    async def run_now(self, name: str) -> int | None:
        """Start the schedule's job now (through the journal, like its cron would); the decision's id, or None
        when no schedule has that name."""


class SchedulerSource:
    """The responder's scheduler as the console's `ScheduleSource`: its status, and "run now" answering the
    decision's id."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    async def statuses(self) -> list[ScheduleStatus]:
        return [ScheduleStatus(**s) for s in await self.scheduler.status()]

    async def run_now(self, name: str) -> int | None:
        decision = await self.scheduler.run_now(name)
        return decision.id if decision is not None else None
