"""What the console needs of a scheduler: its schedules' status and "run now". The scheduler registers
itself with `responder.ui.console.register_schedules(app, source)`; without one the page says no schedules are
configured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
