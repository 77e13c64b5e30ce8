"""The restore drills' upkeep, apart from the scheduler that starts them: the sweeper (what a drill left behind
in RDS) and the `pgwarden_drill_*` gauges.

`start()` sweeps once and sets the gauges (at start-up, before the responder serves), then runs `tick()` on
every housekeeping tick of the dispatcher (a sweep at most every minute, the gauges every time); `stop()`
ends that.
"""

from __future__ import annotations

import logging

from responder.clock import Clock, system_clock
from responder.config import Config
from responder.core import RdsTarget
from responder.decide import resolve_target
from responder.dispatcher import Dispatcher
from responder.drills.metrics import ACTION, DrillMetrics
from responder.drills.sweeper import DrillSweeper
from responder.journal import JournalUnavailable
from responder.migrate.metrics import MigrationMetrics

log = logging.getLogger("responder.drills")


def drill_regions(config: Config) -> set[str]:
    """Where drill instances can be: every region a configured restore_drill restores in."""
    drills = [p for p in config.all_playbooks if p.action == ACTION]
    if not drills:
        return set()
    regions = {config.aws.region} if config.aws is not None else set()
    for schedule in config.schedules:
        if schedule.playbook.action == ACTION:
            target = resolve_target(schedule.playbook, schedule.labels, config)
            if isinstance(target, RdsTarget):
                regions.add(target.region)
    for p in drills:
        region = getattr(p.params, "region", None)
        if isinstance(region, str):
            regions.add(region)
    return regions


def drill_mode(config: Config) -> str:
    """The sweeper deletes only when some drill playbook enforces: with every one in dry-run, it only plans."""
    enforcing = any(p.action == ACTION and p.mode == "enforce" for p in config.all_playbooks)
    return "enforce" if enforcing else "dry-run"


class DrillHousekeeping:
    def __init__(self, config: Config, dispatcher: Dispatcher, clock: Clock = system_clock) -> None:
        self.dispatcher = dispatcher
        self.journal = dispatcher.journal
        self.metrics = DrillMetrics(dispatcher.metrics.registry)
        self.migrations = MigrationMetrics(dispatcher.metrics.registry)  # `migrate run` rows: same journal
        regions = drill_regions(config)
        rds = dispatcher.rds
        self.sweeper = (
            DrillSweeper(rds, self.journal, regions, self.metrics, mode=drill_mode(config), clock=clock)
            if rds is not None and regions
            else None
        )

    async def start(self) -> None:
        await self._sweep_and_measure(force=True)
        self.dispatcher.periodic.append(self.tick)

    async def stop(self) -> None:
        if self.tick in self.dispatcher.periodic:
            self.dispatcher.periodic.remove(self.tick)

    async def tick(self) -> None:
        await self._sweep_and_measure()

    async def _sweep_and_measure(self, force: bool = False) -> None:
        if self.sweeper is not None:
            try:
                await (self.sweeper.sweep() if force else self.sweeper.maybe_sweep())
            except JournalUnavailable:
                raise
            except Exception as exc:  # AWS unreachable: retried on the next sweep
                log.warning("drill sweep failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        await self.metrics.refresh(self.journal)
        await self.migrations.refresh(self.journal)
