"""What the responder opens at start-up and closes at exit: one aiohttp cleanup context per resource, in
dependency order (`RESOURCES`); aiohttp closes them in the reverse order.

    journal       the journal's store (closed last)
    rds           the RDS API, when `aws:` is configured
    dispatcher    recovers what an earlier process left open; at exit, what still runs gets `shutdown_timeout`
    scheduler     the catch-up of missed ticks; then a tick in each housekeeping round
    housekeeping  heartbeat, expiry, retention, the periodic jobs; at exit it drains first (running actions
                  get `shutdown_timeout` while the heartbeat goes on, so that no other replica takes them for
                  a dead one's), then stops

A context opens only once every one before it has; when one fails to open, the ones already open are closed in
reverse by the runner's cleanup (`web.AppRunner.cleanup()`, which `responder.cli.serve` always calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from responder import keys
from responder.aws import RdsApi
from responder.dispatcher import Dispatcher
from responder.journal import Journal, open_store
from responder.scheduling.scheduler import ConsoleSchedules, Scheduler
from responder.ui.console import register_schedules

log = logging.getLogger("responder")


async def journal(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    store = open_store(
        config.journal, timeout=config.schema.journal_timeout, credentials=config.journal_credentials
    )
    opened = Journal(store, app[keys.OWNER])
    await opened.start()
    app[keys.JOURNAL] = opened
    yield
    await opened.close()


async def rds(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    app[keys.RDS] = RdsApi(config.aws) if config.aws else None
    yield


async def dispatcher(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    journal = app[keys.JOURNAL]
    running = Dispatcher(config, journal, app[keys.METRICS], app[keys.RDS])
    app[keys.DISPATCHER] = running
    await running.recover(first=True)
    yield
    await running.shutdown(
        config.schema.shutdown_timeout
    )  # nothing left to wait for after housekeeping's drain


async def scheduler(app: web.Application) -> AsyncIterator[None]:
    schedules = Scheduler(app[keys.CONFIG], app[keys.DISPATCHER], app[keys.CLOCK])
    app[keys.SCHEDULER] = schedules
    if keys.SCHEDULES not in app:  # a console source registered before start-up stands
        register_schedules(app, ConsoleSchedules(schedules))
    await schedules.start()
    app[keys.DISPATCHER].periodic.append(schedules.tick)
    yield


async def housekeeping(app: web.Application) -> AsyncIterator[None]:
    running = app[keys.DISPATCHER]
    task = asyncio.create_task(running.housekeeping(), name="housekeeping")
    yield
    await running.shutdown(app[keys.CONFIG].schema.shutdown_timeout)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


RESOURCES: tuple[Callable[[web.Application], AsyncIterator[None]], ...] = (
    journal,
    rds,
    dispatcher,
    scheduler,
    housekeeping,
)


async def started(app: web.Application) -> None:
    """Every resource is open (an on_startup hook: it runs after the cleanup contexts)."""
    journal = app[keys.JOURNAL]
    log.info("journal open", extra={"journal": journal.describe(), "replica": app[keys.OWNER]})
    # What start-up built lives as long as the process: out of the collector's way (garbage collected first),
    # so that a full collection, which a large payload's allocations trigger, does not stall the loop walking it.
    gc.collect()
    gc.freeze()
