"""What Prometheus and the orchestrator ask: `GET /metrics` and `GET /healthz`."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from responder import keys
from responder.journal import JournalUnavailable


async def metrics(request: web.Request) -> web.Response:
    metrics = request.app[keys.METRICS]
    try:
        async with asyncio.timeout(2):
            metrics.pending.set(await request.app[keys.JOURNAL].pending())
            metrics.journal_rows.set(await request.app[keys.JOURNAL].rows())
    except (JournalUnavailable, TimeoutError):
        metrics.journal_up.set(0)  # the other metrics are still served; the gauge keeps its last value
    body = generate_latest(metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    journal = request.app[keys.JOURNAL]
    try:
        async with asyncio.timeout(3):
            await journal.ping()
    except (JournalUnavailable, TimeoutError):
        return web.json_response({"status": "journal unavailable", "journal": journal.describe()}, status=503)
    return web.json_response(
        {"status": "ok", "journal": journal.describe(), "running_actions": request.app[keys.DISPATCHER].busy}
    )
