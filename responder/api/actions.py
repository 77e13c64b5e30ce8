"""The journal's decisions over HTTP: `GET /actions`, and an approver's `POST /actions/{id}/approve|reject`."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from responder import keys
from responder.api.auth import any_token, approver_token, bearer
from responder.journal import JournalUnavailable
from responder.models import action_id
from responder.outcomes import Answer
from responder.principals import presented_token

log = logging.getLogger("responder")

MAX_LIMIT = 1000
APPROVAL_STATUS = {
    Answer.APPROVED: 202,
    Answer.REJECTED: 200,
    Answer.NOT_FOUND: 404,
    Answer.NOT_PENDING: 409,
    Answer.EXPIRED: 410,
    Answer.RECORDED: 202,  # counted; another approver's approval is needed (the two-person rule)
    Answer.ALREADY_APPROVED: 409,
    Answer.LINK_USED: 409,  # never from this API (links are the console's), here for completeness
}


@bearer(any_token)
async def list_actions(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        return web.json_response({"error": "limit must be an integer"}, status=400)
    if not 1 <= limit <= MAX_LIMIT:
        return web.json_response({"error": f"limit must be between 1 and {MAX_LIMIT}"}, status=400)
    try:
        rows = await request.app[keys.JOURNAL].recent(limit)
    except JournalUnavailable:
        return web.json_response({"error": "journal unavailable"}, status=503)
    return web.json_response({"actions": [row.to_json() for row in rows]})


@bearer(approver_token)
async def approve(request: web.Request) -> web.Response:
    return await _decide(request, True)


@bearer(approver_token)
async def reject(request: web.Request) -> web.Response:
    return await _decide(request, False)


async def _decide(request: web.Request, approve: bool) -> web.Response:
    """The journal records the approver's name (`approver_token` let only an approver through)."""
    approver = request.app[keys.CONFIG].principal(presented_token(request))
    assert approver is not None
    chosen = action_id(request.match_info["id"])
    if chosen is None:
        return web.json_response({"error": "no such action"}, status=404)
    try:
        answer = await request.app[keys.DISPATCHER].decide(chosen, approve, approver.name)
        current = await request.app[keys.JOURNAL].get(chosen) if answer is Answer.NOT_PENDING else None
    except JournalUnavailable:
        return web.json_response({"error": "journal unavailable"}, status=503)
    comment = request.headers.get("X-Pgwarden-User", "")[:100]  # a comment only; never the identity
    log.info(
        "approval",
        extra={
            "action_id": chosen,
            "answer": answer.value,
            "by": approver.name,
            "comment": comment or None,
        },
    )
    body: dict[str, Any] = {"id": chosen, "result": answer, "decided_by": approver.name}
    if current is not None:  # someone (or something) decided first: say what it is now
        body |= {"state": current.state, "outcome": current.outcome}
    return web.json_response(body, status=APPROVAL_STATUS[answer])
