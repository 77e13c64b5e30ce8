"""The scheduler: fires each schedule's ticks as journaled decisions, runs the drill sweeper, keeps the drill
gauges fresh, and answers `/schedules`.

It runs inside housekeeping (`Dispatcher.periodic`), so a tick fires within one housekeeping period (at most
5 s) of its time. Every replica fires every tick; the decision key `schedule:<name>|<time>` lets exactly one
act (the others journal a duplicate). A tick missed while every replica was down runs once at start-up when it
is at most `catch_up` old and nobody journaled it.

For a console: `app[keys.SCHEDULER]` is the scheduler; `await scheduler.status()` is what `GET /schedules` returns.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from responder.clock import Clock, iso, system_clock
from responder.config import Config, ConfigError, Schedule
from responder.core import RdsTarget, Target
from responder.dispatcher import Dispatcher
from responder.drills.metrics import ACTION as DRILL_ACTION
from responder.drills.metrics import DrillMetrics
from responder.drills.sweeper import DrillSweeper
from responder.guards import Decision, resolve_target
from responder.journal import JournalUnavailable, NewDecision, Recorded, Tx
from responder.outcomes import State
from responder.ui.schedules import ScheduleStatus

log = logging.getLogger("responder.schedules")


def dedup_key(schedule: Schedule, at: str) -> str:
    return f"schedule:{schedule.name}|{at}"


def op_key_taken(key: str) -> Callable[[Tx], bool]:
    def run(tx: Tx) -> bool:
        return tx.execute("SELECT 1 FROM pgwarden_actions WHERE dedup_key = ?", (key,)).fetchone() is not None

    return run


def op_last_decision(playbook: str) -> Callable[[Tx], tuple[Any, ...] | None]:
    """The schedule's latest decision that was not a duplicate: (id, created_at, state, outcome)."""

    def run(tx: Tx) -> tuple[Any, ...] | None:
        row = tx.execute(
            "SELECT id, created_at, state, outcome FROM pgwarden_actions"
            " WHERE playbook = ? AND dedup_key IS NOT NULL ORDER BY id DESC LIMIT 1",
            (playbook,),
        ).fetchone()
        return None if row is None else tuple(row)

    return run


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


def _drill_regions(config: Config, targets: dict[str, Target]) -> set[str]:
    """Where drill instances can be: every region a configured restore_drill restores in."""
    regions: set[str] = set()
    drills = [p for p in config.all_playbooks if p.action == DRILL_ACTION]
    if not drills:
        return regions
    if config.aws is not None:
        regions.add(config.aws.region)
    for schedule in config.schedules:
        target = targets[schedule.name]
        if schedule.playbook.action == DRILL_ACTION and isinstance(target, RdsTarget):
            regions.add(target.region)
    for p in drills:
        region = getattr(p.params, "region", None)
        if isinstance(region, str):
            regions.add(region)
    return regions


def _drill_mode(config: Config) -> str:
    """The sweeper deletes only when some drill playbook enforces: with every one in dry-run, it only plans."""
    enforcing = any(p.action == DRILL_ACTION and p.mode == "enforce" for p in config.all_playbooks)
    return "enforce" if enforcing else "dry-run"


class Scheduler:
    def __init__(self, config: Config, dispatcher: Dispatcher, clock: Clock = system_clock) -> None:
        self.config = config
        self.clock = clock
        self.dispatcher = dispatcher
        self.journal = dispatcher.journal
        self.schedules = {s.name: s for s in config.schedules}
        self.targets = resolve_targets(config)
        self.next_run: dict[str, datetime] = {}
        self.drill_metrics = DrillMetrics(dispatcher.metrics.registry)
        regions = _drill_regions(config, self.targets)
        rds = dispatcher.rds
        self.sweeper = (
            DrillSweeper(
                rds, self.journal, regions, self.drill_metrics, mode=_drill_mode(config), clock=clock
            )
            if rds is not None and regions
            else None
        )

    async def start(self, now: datetime | None = None) -> None:
        """At start-up: the clocks, the catch-up of missed ticks, a first sweep and the drill gauges."""
        now = now or self.clock()
        for schedule in self.schedules.values():
            self.next_run[schedule.name] = schedule.next_after(now)
            if schedule.schema.catch_up > 0:
                missed = schedule.last_at_or_before(now)
                fresh = (now - missed).total_seconds() <= schedule.schema.catch_up
                if fresh and not await self.journal.store.run(
                    op_key_taken(dedup_key(schedule, iso_ms(missed)))
                ):
                    log.info(
                        "catching up a missed tick", extra={"schedule": schedule.name, "at": iso(missed)}
                    )
                    await self.fire(schedule, missed)
        await self._sweep_and_measure(force=True)

    async def tick(self, now: datetime | None = None) -> None:
        """Fire every schedule whose time has come (once, even if several ticks passed), then sweep."""
        now = now or self.clock()
        for schedule in self.schedules.values():
            due = self.next_run.get(schedule.name)
            if due is None or due > now:
                continue
            while (following := schedule.next_after(due)) <= now:
                due = following  # the process was stalled over several ticks: run the latest only
            await self.fire(schedule, due)  # JournalUnavailable: not advanced, retried on the next tick
            self.next_run[schedule.name] = schedule.next_after(due)
        await self._sweep_and_measure()

    async def _sweep_and_measure(self, force: bool = False) -> None:
        if self.sweeper is not None:
            try:
                await (self.sweeper.sweep() if force else self.sweeper.maybe_sweep())
            except JournalUnavailable:
                raise
            except Exception as exc:  # AWS unreachable: retried on the next sweep
                log.warning("drill sweep failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        await self.drill_metrics.refresh(self.journal)

    async def fire(self, schedule: Schedule, at: datetime, *, run_now: bool = False) -> Recorded:
        """Journal one tick (or a run requested now) as a decision, and act on it like an alert's."""
        starts_at = iso_ms(at)
        key = dedup_key(schedule, f"run|{starts_at}|{uuid.uuid4().hex[:8]}" if run_now else starts_at)
        pb = schedule.playbook
        target = self.targets[schedule.name]
        record = NewDecision(
            alertname=schedule.name,
            fingerprint="schedule",
            starts_at=starts_at,
            alert_status="run" if run_now else "scheduled",
            labels={"schedule": schedule.name, **schedule.labels},
            state=State.PENDING if pb.require_approval else State.QUEUED,
            playbook=pb.name,
            action=pb.action,
            mode=pb.mode,
            target=target.describe(),
            target_key=target.key,
            dedup_key=key,
        )
        (recorded,) = await self.dispatcher.record_decisions([Decision(record, pb, target)])
        return recorded

    async def run_now(self, name: str) -> Recorded | None:
        schedule = self.schedules.get(name)
        if schedule is None:
            return None
        return await self.fire(schedule, self.clock(), run_now=True)

    async def status(self) -> list[dict[str, Any]]:
        """Each schedule with its next and last run and last outcome (RFC 3339 UTC, null when none)."""
        out = []
        for schedule in self.schedules.values():
            last = await self.journal.store.run(op_last_decision(schedule.name))
            pb = schedule.playbook
            out.append(
                {
                    "name": schedule.name,
                    "cron": schedule.schema.cron,
                    "action": pb.action,
                    "mode": pb.mode,
                    "target": self.targets[schedule.name].describe(),
                    "next_run": iso(self.next_run.get(schedule.name)),
                    "last_run": iso(datetime.fromtimestamp(float(last[1]), UTC)) if last else None,
                    "last_state": last[2] if last else None,
                    "last_outcome": last[3] if last else None,
                    "last_decision_id": int(last[0]) if last else None,
                }
            )
        return out


def iso_ms(moment: datetime) -> str:
    """The tick's time as the decision's startsAt (and key): RFC 3339 UTC, milliseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class ConsoleSchedules:
    """The scheduler as the console's `ScheduleSource`: its status, and "run now" answering the decision id."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    async def statuses(self) -> list[ScheduleStatus]:
        return [ScheduleStatus(**s) for s in await self.scheduler.status()]

    async def run_now(self, name: str) -> int | None:
        recorded = await self.scheduler.run_now(name)
        return recorded.id if recorded is not None else None
