"""The schedules over HTTP: `GET /schedules` (each with its next and last run) and `POST /schedules/{name}/run`."""

from __future__ import annotations

from aiohttp import web

from responder import keys
from responder.api.auth import bearer, webhook_token
from responder.journal import JournalUnavailable


@bearer(webhook_token)
async def list_schedules(request: web.Request) -> web.Response:
    try:
        return web.json_response(await request.app[keys.SCHEDULER].status())
    except JournalUnavailable:
        return web.json_response({"error": "journal unavailable"}, status=503)


@bearer(webhook_token)
async def run_schedule(request: web.Request) -> web.Response:
    try:
        decision = await request.app[keys.SCHEDULER].run_now(request.match_info["name"])
    except JournalUnavailable:
        return web.json_response({"error": "journal unavailable"}, status=503)
    if decision is None:
        return web.json_response({"error": "no such schedule"}, status=404)
    return web.json_response(
        {"id": decision.id, "state": decision.state, "outcome": decision.outcome}, status=202
    )
