"""The app's resources (responder.lifecycle): one cleanup context each, opened in dependency order, and every
one that opened closed again by the runner's cleanup, also when a later one fails to open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from devtools.processes import free_port
from responder import keys, lifecycle
from responder.app import make_app
from responder.cli import serve
from responder.journal import JournalUnavailable
from tests.support.clock import frozen_clock
from tests.support.responder import ConfigFactory


async def cannot_open(app: web.Application) -> AsyncIterator[None]:
    raise RuntimeError("this resource cannot open")
    yield  # an async generator, like every resource


def _housekeeping_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "housekeeping" and not t.done()]


async def test_the_resources_open_in_dependency_order(make_config: ConfigFactory) -> None:
    app = make_app(make_config(), clock=frozen_clock)
    assert list(app.cleanup_ctx) == [
        lifecycle.open_journal,
        lifecycle.open_rds,
        lifecycle.start_notifier,
        lifecycle.start_dispatcher,
        lifecycle.start_scheduler,
        lifecycle.start_drill_housekeeping,
        lifecycle.run_housekeeping,
    ]


async def test_a_resource_that_fails_after_the_journal_opened_leaves_the_journal_closed(
    make_config: ConfigFactory,
) -> None:
    app = make_app(make_config(), clock=frozen_clock)
    app.cleanup_ctx.insert(app.cleanup_ctx.index(lifecycle.open_journal) + 1, cannot_open)
    with pytest.raises(RuntimeError, match="cannot open"):
        await serve(app, "127.0.0.1", free_port(), None, grace=5)  # the CLI's way: its cleanup always runs
    assert keys.DISPATCHER not in app  # nothing after the failed one opened
    with pytest.raises(JournalUnavailable, match="closed"):
        await app[keys.JOURNAL].ping()


async def test_a_failure_after_every_resource_opened_closes_them_all(make_config: ConfigFactory) -> None:
    app = make_app(make_config(), clock=frozen_clock)
    app.cleanup_ctx.append(cannot_open)
    runner = web.AppRunner(app)
    with pytest.raises(RuntimeError, match="cannot open"):
        await runner.setup()
    assert _housekeeping_tasks()  # housekeeping had started
    await runner.cleanup()
    assert _housekeeping_tasks() == []
    with pytest.raises(JournalUnavailable, match="closed"):
        await app[keys.JOURNAL].ping()
