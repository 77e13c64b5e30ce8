"""`POST /webhook`: the body read within its limit, the envelope and each alert validated, every alert's
decisions handed to the dispatcher (which journals them before this answers), and the reply."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any

from aiohttp import web
from annotated_types import MaxLen
from pydantic import ValidationError

from responder import keys
from responder.api.auth import Handler, bearer, webhook_token
from responder.decide import RejectedAlert, alert_problem
from responder.decision import Decision
from responder.dispatcher import SLICE
from responder.journal import JournalUnavailable
from responder.models import Alert, WebhookPayload, validate_whole
from responder.outcomes import Outcome

log = logging.getLogger("responder")

MAX_ALERTS = next(
    m.max_length for m in WebhookPayload.model_fields["alerts"].metadata if isinstance(m, MaxLen)
)
ENCODE_SLICE = 16 * SLICE


def counted(handler: Handler) -> Handler:
    """`pgwarden_responder_webhooks_total{code}` for every answer, a refused one too."""

    @functools.wraps(handler)
    async def counting(request: web.Request) -> web.StreamResponse:
        response = await handler(request)
        request.app[keys.METRICS].webhooks.labels(str(response.status)).inc()
        return response

    return counting


@counted
@bearer(webhook_token)
async def webhook(request: web.Request) -> web.Response:
    code, body = await _webhook(request)
    return web.Response(text=await _encode(body), status=code, content_type="application/json")


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(payload)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


async def _webhook(request: web.Request) -> tuple[int, dict[str, Any]]:
    app = request.app
    limit = app[keys.CONFIG].schema.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return 413, {"error": f"body over {limit} bytes"}
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return 413, {"error": f"body over {limit} bytes"}
    payload = validate_whole(body)
    if payload is not None:
        items = _checked(payload.alerts, body)
    else:
        parsed = await _piece_by_piece(body)
        if isinstance(parsed, tuple):
            return parsed
        items = parsed
    try:
        journaled = await app[keys.DISPATCHER].intake(items)  # decided, journaled, queued ones running
    except JournalUnavailable:
        return 503, {"error": "journal unavailable; retry later"}
    decisions = []
    for i, d in enumerate(journaled):
        if i and i % SLICE == 0:
            await asyncio.sleep(0)
        decisions.append(_decision(d))
    rejected = sum(isinstance(item, RejectedAlert) for item in items)
    return 202, {"status": "accepted", "rejected": rejected, "decisions": decisions}


def _checked(alerts: list[Alert], body: bytes) -> list[Alert | RejectedAlert]:
    """Alerts of a payload validated whole: each still checked for what the journal cannot hold."""
    items: list[Alert | RejectedAlert] = []
    raw_alerts: list[Any] | None = None
    for i, alert in enumerate(alerts):
        problem = alert_problem(alert)
        if problem is None:
            items.append(alert)
            continue
        if raw_alerts is None:  # the alert as it came, for its journal row: only when one is rejected
            raw_alerts = json.loads(body)["alerts"]
        items.append(RejectedAlert(raw_alerts[i], problem))
    return items


async def _piece_by_piece(body: bytes) -> tuple[int, dict[str, Any]] | list[Alert | RejectedAlert]:
    """A payload the one pass did not take: the envelope (a 400 with the reason if it is wrong), then each
    alert on its own."""
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return 400, {"error": "malformed payload", "reason": f"invalid JSON: {type(exc).__name__}"}
    if not isinstance(raw, dict):
        return 400, {"error": "malformed payload", "reason": "the payload must be a JSON object"}
    alerts = raw.get("alerts")
    if isinstance(alerts, list) and len(alerts) > MAX_ALERTS:
        return 400, {"error": "malformed payload", "reason": f"alerts: more than {MAX_ALERTS} alerts"}
    try:
        WebhookPayload.model_validate({**raw, "alerts": []} if isinstance(alerts, list) else raw)
    except ValidationError as exc:
        return 400, {"error": "malformed payload", "reason": _reason(exc)}
    except RecursionError:
        return 400, {"error": "malformed payload", "reason": "nested too deeply"}
    assert isinstance(alerts, list)
    return await _alerts(alerts)


async def _alerts(raw_alerts: list[Any]) -> list[Alert | RejectedAlert]:
    """Each alert validated on its own (a slice at a time, yielding between slices); a bad one is rejected
    with its reason: a wrong shape, a NUL, invalid UTF-8, an oversized text."""
    items: list[Alert | RejectedAlert] = []
    for i, raw in enumerate(raw_alerts):
        if i and i % SLICE == 0:
            await asyncio.sleep(0)
        try:
            alert = Alert.model_validate(raw)
        except ValidationError as exc:
            items.append(RejectedAlert(raw, _reason(exc)))
            continue
        except RecursionError:
            items.append(RejectedAlert(raw, "nested too deeply"))
            continue
        problem = alert_problem(alert)
        items.append(alert if problem is None else RejectedAlert(raw, problem))
    return items


def _decision(d: Decision) -> dict[str, Any]:
    return {
        "id": d.id,
        "playbook": d.playbook,
        "state": d.state,
        "outcome": d.outcome,
        **({"duplicate_of": d.duplicate_of} if d.duplicate_of else {}),
        **({"reason": d.error} if d.outcome == Outcome.REJECTED else {}),
    }


async def _encode(body: dict[str, Any]) -> str:
    """The JSON text of a reply; a long `decisions` list is encoded a slice at a time, yielding between."""
    decisions = body.get("decisions")
    if not isinstance(decisions, list) or len(decisions) <= ENCODE_SLICE:
        return json.dumps(body)
    head = json.dumps({k: v for k, v in body.items() if k != "decisions"})[:-1]
    parts = []
    for start in range(0, len(decisions), ENCODE_SLICE):
        parts.append(json.dumps(decisions[start : start + ENCODE_SLICE])[1:-1])
        await asyncio.sleep(0)
    return f'{head}, "decisions": [{", ".join(parts)}]}}'
