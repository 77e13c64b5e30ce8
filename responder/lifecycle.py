"""What the responder opens at start-up and closes at exit: one aiohttp cleanup context per resource, in
dependency order (`RESOURCES`); aiohttp closes them in the reverse order.

    open_journal       the journal's store (closed last)
    open_rds           the RDS API, when `aws:` is configured
    start_notifier     the sender of the outbox's notices (closed after the dispatcher has drained, so the
                       last decisions' notices are queued; whatever is left is sent by the next process)
    start_dispatcher   recovers what an earlier process left open; at exit, what still runs gets
                       `shutdown_timeout`
    start_scheduler    the catch-up of missed ticks; then a tick in each housekeeping round
    start_drill_housekeeping  the drill sweeper and the drill gauges (their own tick in each round)
    run_housekeeping   heartbeat, expiry, retention, the periodic jobs; at exit it drains first (running
                       actions get `shutdown_timeout` while the heartbeat goes on, so that no other replica
                       takes them for a dead one's), then stops

A context opens only once every one before it has; when one fails to open, the ones already open are closed in
reverse by the runner's cleanup (`web.AppRunner.cleanup()`, which `responder.cli.serve` always calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from responder import keys
from responder.aws import RdsApi
from responder.dispatcher import Dispatcher
from responder.drills.housekeeping import DrillHousekeeping
from responder.journal import Journal, open_store
from responder.notify.outbox import router
from responder.notify.sender import Sender, SenderTuning
from responder.scheduling.scheduler import Scheduler
from responder.ui.console import register_schedules
from responder.ui.schedules import SchedulerSource

log = logging.getLogger("responder")


async def open_journal(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    store = open_store(
        config.journal, timeout=config.schema.journal_timeout, credentials=config.journal_credentials
    )
    journal = Journal(store, app[keys.OWNER], router(config.notify))
    await journal.start()
    app[keys.JOURNAL] = journal
    yield
    await journal.close()


async def open_rds(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    app[keys.RDS] = RdsApi(config.aws) if config.aws else None
    yield


async def start_notifier(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    tuning = app.get(keys.NOTIFY_TUNING, SenderTuning())
    needed = {p.name: p.approvals for p in config.all_playbooks}
    sender = Sender(
        app[keys.JOURNAL],
        config.notify,
        config.principals,
        app[keys.METRICS].notify,
        tuning,
        approvals_needed=needed,
    )
    app[keys.NOTIFIER] = sender
    if config.notify.routes:
        await sender.start()
    yield
    await sender.stop()


async def start_dispatcher(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    dispatcher = Dispatcher(config, app[keys.JOURNAL], app[keys.METRICS], app[keys.RDS])
    app[keys.DISPATCHER] = dispatcher
    await dispatcher.recover(first=True)
    yield
    # Housekeeping's exit has drained already; this waits only if housekeeping never started.
    await dispatcher.shutdown(config.schema.shutdown_timeout)


async def start_scheduler(app: web.Application) -> AsyncIterator[None]:
    scheduler = Scheduler(app[keys.CONFIG], app[keys.DISPATCHER], app[keys.CLOCK])
    app[keys.SCHEDULER] = scheduler
    if keys.SCHEDULES not in app:  # a console source registered before start-up stands
        register_schedules(app, SchedulerSource(scheduler))
    await scheduler.start()
    app[keys.DISPATCHER].periodic.append(scheduler.tick)
    yield


async def start_drill_housekeeping(app: web.Application) -> AsyncIterator[None]:
    drills = DrillHousekeeping(app[keys.CONFIG], app[keys.DISPATCHER], app[keys.CLOCK])
    app[keys.DRILLS] = drills
    await drills.start()
    yield
    await drills.stop()


async def run_housekeeping(app: web.Application) -> AsyncIterator[None]:
    dispatcher = app[keys.DISPATCHER]
    task = asyncio.create_task(dispatcher.housekeeping(), name="housekeeping")
    yield
    await dispatcher.shutdown(app[keys.CONFIG].schema.shutdown_timeout)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


RESOURCES: tuple[Callable[[web.Application], AsyncIterator[None]], ...] = (
    open_journal,
    open_rds,
    start_notifier,
    start_dispatcher,
    start_scheduler,
    start_drill_housekeeping,
    run_housekeeping,
)


# The interpreter's settings for serving (see `started`).
GC_THRESHOLDS = (50_000, 20, 10)
SWITCH_INTERVAL = 0.0005


async def started(app: web.Application) -> None:
    """Every resource is open (an on_startup hook: it runs after the cleanup contexts); the interpreter set for
    serving webhooks at a steady rate."""
    journal = app[keys.JOURNAL]
    log.info("journal open", extra={"journal": journal.describe(), "replica": app[keys.OWNER]})
    # What start-up built lives as long as the process: out of the collector's way (garbage collected first),
    # so that a full collection, which a large payload's allocations trigger, does not stall the loop walking it.
    gc.collect()
    gc.freeze()
    # A webhook's objects live until its decisions are journaled, a few milliseconds; with the default 700
    # allocations between young collections, every webhook in flight is walked and promoted again and again
    # (about a tenth of the CPU a webhook costs at 2,000/s). Almost nothing a webhook makes is cyclic garbage:
    # collecting every 50,000 allocations finds the same garbage at a sixth of the cost.
    gc.set_threshold(*GC_THRESHOLDS)
    # The journal's commit thread (SQLite) or pool threads (PostgreSQL) hand each batch back to the event loop
    # through the GIL. While the loop is busy, a thread that wants the GIL waits out the switch interval, 5 ms
    # by default, twice a commit: under load every webhook's ack waited for it (the p99 at 2,000/s). The
    # threads here mostly wait on I/O, so handing the GIL over sooner costs next to nothing.
    sys.setswitchinterval(SWITCH_INTERVAL)
