"""The scheduler: fires each schedule's ticks as journaled decisions, and answers `/schedules`.

It runs inside housekeeping (`Dispatcher.periodic`), so a tick fires within one housekeeping period (at most
5 s) of its time. Every replica fires every tick; the decision key `schedule:<name>|<time>` lets exactly one
act (the others journal a duplicate). A tick missed while every replica was down runs once at start-up when it
is at most `catch_up` old and nobody journaled it.

For a console: `app[keys.SCHEDULER]` is the scheduler; `await scheduler.status()` is what `GET /schedules` returns.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from responder.clock import Clock, iso, system_clock
from responder.config import Config, ConfigError, Schedule
from responder.core import Target
from responder.decide import params_digest, resolve_target
from responder.decision import Decision, ScheduleTrigger
from responder.dispatcher import Dispatcher
from responder.outcomes import State

log = logging.getLogger("responder.schedules")


def dedup_key(schedule: Schedule, at: str) -> str:
    return f"schedule:{schedule.name}|{at}"


def resolve_targets(config: Config) -> dict[str, Target]:
    """Each schedule's target, resolved from its labels as an alert's would be; ConfigError if one is not."""
    targets: dict[str, Target] = {}
    errors = []
    for i, schedule in enumerate(config.schedules):
        target = resolve_target(schedule.playbook, schedule.labels, config)
        if target is None:
            errors.append(f"schedules.{i}.target: names no target {schedule.playbook.action} can act on")
        else:
            targets[schedule.name] = target
    if errors:
        raise ConfigError(errors)
    return targets


class Scheduler:
    def __init__(self, config: Config, dispatcher: Dispatcher, clock: Clock = system_clock) -> None:
        self.config = config
        self.clock = clock
        self.dispatcher = dispatcher
        self.journal = dispatcher.journal
        self.schedules = {s.name: s for s in config.schedules}
        self.targets = resolve_targets(config)
        self.next_run: dict[str, datetime] = {}

    async def start(self, now: datetime | None = None) -> None:
        """At start-up: the clocks, and the catch-up of missed ticks."""
        now = now or self.clock()
        for schedule in self.schedules.values():
            self.next_run[schedule.name] = schedule.next_after(now)
            if schedule.schema.catch_up > 0:
                missed = schedule.last_at_or_before(now)
                fresh = (now - missed).total_seconds() <= schedule.schema.catch_up
                if fresh and not await self.journal.is_decided(dedup_key(schedule, iso_ms(missed))):
                    log.info(
                        "catching up a missed tick", extra={"schedule": schedule.name, "at": iso(missed)}
                    )
                    await self.fire(schedule, missed)

    async def tick(self, now: datetime | None = None) -> None:
        """Fire every schedule whose time has come (once, even if several ticks passed)."""
        now = now or self.clock()
        for schedule in self.schedules.values():
            due = self.next_run.get(schedule.name)
            if due is None or due > now:
                continue
            while (following := schedule.next_after(due)) <= now:
                due = following  # the process was stalled over several ticks: run the latest only
            await self.fire(schedule, due)  # JournalUnavailable: not advanced, retried on the next tick
            self.next_run[schedule.name] = schedule.next_after(due)

    async def fire(self, schedule: Schedule, at: datetime, *, run_now: bool = False) -> Decision:
        """Journal one tick (or a run requested now) as a decision, and act on it like an alert's."""
        starts_at = iso_ms(at)
        key = dedup_key(schedule, f"run|{starts_at}|{uuid.uuid4().hex[:8]}" if run_now else starts_at)
        pb = schedule.playbook
        trigger = ScheduleTrigger(
            schedule.name, starts_at, {"schedule": schedule.name, **schedule.labels}, run_now
        )
        state = State.PENDING if pb.require_approval else State.QUEUED
        decision = Decision(
            trigger, state, pb.name, pb.action, pb.mode, self.targets[schedule.name], dedup_key=key,
            params_digest=params_digest(pb),
        )  # fmt: skip
        (journaled,) = await self.dispatcher.accept([decision])
        return journaled

    async def run_now(self, name: str) -> Decision | None:
        schedule = self.schedules.get(name)
        if schedule is None:
            return None
        return await self.fire(schedule, self.clock(), run_now=True)

    async def status(self) -> list[dict[str, Any]]:
        """Each schedule with its next and last run and last outcome (RFC 3339 UTC, null when none)."""
        out = []
        for schedule in self.schedules.values():
            last = await self.journal.last_decision(schedule.name)
            pb = schedule.playbook
            out.append(
                {
                    "name": schedule.name,
                    "cron": schedule.schema.cron,
                    "action": pb.action,
                    "mode": pb.mode,
                    "target": self.targets[schedule.name].describe(),
                    "next_run": iso(self.next_run.get(schedule.name)),
                    "last_run": iso(datetime.fromtimestamp(last.created_at, UTC)) if last else None,
                    "last_state": last.state if last else None,
                    "last_outcome": last.outcome if last else None,
                    "last_decision_id": last.id if last else None,
                }
            )
        return out


def iso_ms(moment: datetime) -> str:
    """The tick's time as the decision's startsAt (and key): RFC 3339 UTC, milliseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
