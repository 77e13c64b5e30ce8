"""The aiohttp application: HTTP in and out; the dispatcher does the rest. `make_app(config)` for both the CLI
and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import json
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from annotated_types import MaxLen
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from responder import keys
from responder.aws import RdsApi
from responder.clock import Clock, system_clock
from responder.config import Config
from responder.decide import RejectedAlert, alert_problem
from responder.decision import Decision
from responder.dispatcher import SLICE, Dispatcher
from responder.drills.housekeeping import DRILLS, DrillHousekeeping
from responder.journal import Journal, JournalUnavailable, open_store
from responder.metrics import ResponderMetrics
from responder.models import Alert, WebhookPayload, action_id
from responder.outcomes import Answer, Outcome
from responder.principals import presented_token
from responder.scheduling.scheduler import SCHEDULER, Scheduler, schedule_status
from responder.ui import SCHEDULES, SchedulerSource, register_schedules, setup_console

log = logging.getLogger("responder")

MAX_LIMIT = 1000
MAX_ALERTS = next(
    m.max_length for m in WebhookPayload.model_fields["alerts"].metadata if isinstance(m, MaxLen)
)
ENCODE_SLICE = 16 * SLICE
# The token API, where a person's own bearer token is the credential: with `--web.config.file` basic auth, such a
# token is not also asked for basic-auth credentials here (an Authorization header carries one or the other).
PERSONAL_TOKEN_ROUTES = frozenset(
    {"/actions", "/actions/{id}/approve", "/actions/{id}/reject", "/reports", "/reports/{id}"}
)
APPROVAL_STATUS = {
    Answer.APPROVED: 202,
    Answer.REJECTED: 200,
    Answer.NOT_FOUND: 404,
    Answer.NOT_PENDING: 409,
    Answer.EXPIRED: 410,
}


def _reply(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)


def _authorized(request: web.Request) -> bool:
    """The webhook's token (or `auth: none`)."""
    token = request.app[keys.CONFIG].token
    if token is None:
        return True
    return hmac.compare_digest(presented_token(request).encode(), token.encode())


def _may_read(request: web.Request) -> bool:
    """The webhook's token, or an approver's or a viewer's."""
    return _authorized(request) or request.app[keys.CONFIG].principal(presented_token(request)) is not None


def bearer_passes_web_auth(request: web.Request) -> bool:
    """Whether the request's bearer token stands in for `--web.config.file`'s basic auth: the webhook's token on
    any endpoint, an approver's or a viewer's on the token API (PERSONAL_TOKEN_ROUTES), whose handlers then
    check what that person may do. /metrics, /healthz and the console keep basic auth for everyone else (see
    "Who checks what" in docs/responder.md)."""
    config = request.app[keys.CONFIG]
    given = presented_token(request)
    if not given:
        return False
    if config.token is not None and hmac.compare_digest(given.encode(), config.token.encode()):
        return True
    resource = request.match_info.route.resource
    return (
        resource is not None
        and resource.canonical in PERSONAL_TOKEN_ROUTES
        and config.principal(given) is not None
    )


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(payload)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


async def _webhook(request: web.Request) -> tuple[int, dict[str, Any]]:
    app = request.app
    limit = app[keys.CONFIG].schema.max_body_bytes
    if not _authorized(request):
        return 401, {"error": "missing or wrong bearer token"}
    if request.content_length is not None and request.content_length > limit:
        return 413, {"error": f"body over {limit} bytes"}
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return 413, {"error": f"body over {limit} bytes"}
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
        # The envelope as a whole; each alert on its own below, so that one bad alert fails only itself.
        WebhookPayload.model_validate({**raw, "alerts": []} if isinstance(alerts, list) else raw)
    except ValidationError as exc:
        return 400, {"error": "malformed payload", "reason": _reason(exc)}
    except RecursionError:
        return 400, {"error": "malformed payload", "reason": "nested too deeply"}
    assert isinstance(alerts, list)
    items = await _alerts(alerts)
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


async def webhook(request: web.Request) -> web.Response:
    code, body = await _webhook(request)
    request.app[keys.METRICS].webhooks.labels(str(code)).inc()
    return web.Response(text=await _encode(body), status=code, content_type="application/json")


async def list_actions(request: web.Request) -> web.Response:
    if not _may_read(request):
        return _reply(401, {"error": "missing or wrong bearer token"})
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        return _reply(400, {"error": "limit must be an integer"})
    if not 1 <= limit <= MAX_LIMIT:
        return _reply(400, {"error": f"limit must be between 1 and {MAX_LIMIT}"})
    try:
        rows = await request.app[keys.JOURNAL].recent(limit)
    except JournalUnavailable:
        return _reply(503, {"error": "journal unavailable"})
    return _reply(200, {"actions": [row.to_json() for row in rows]})


async def _decide(request: web.Request, approve: bool) -> web.Response:
    """Only an approver's own token decides, and the journal records that approver's name: the webhook's
    token (which every Alertmanager holds) never approves."""
    approver = request.app[keys.CONFIG].principal(presented_token(request))
    if approver is None:
        if _authorized(request) and request.app[keys.CONFIG].token is not None:
            return _reply(403, {"error": "the webhook token cannot approve; use an approver's token"})
        return _reply(401, {"error": "missing or wrong approver token"})
    if not approver.can_approve:
        return _reply(403, {"error": f"{approver.name} is a viewer and cannot approve"})
    chosen = action_id(request.match_info["id"])
    if chosen is None:
        return _reply(404, {"error": "no such action"})
    try:
        answer = await request.app[keys.DISPATCHER].decide(chosen, approve, approver.name)
        current = await request.app[keys.JOURNAL].get(chosen) if answer is Answer.NOT_PENDING else None
    except JournalUnavailable:
        return _reply(503, {"error": "journal unavailable"})
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
    return _reply(APPROVAL_STATUS[answer], body)


async def approve(request: web.Request) -> web.Response:
    return await _decide(request, True)


async def reject(request: web.Request) -> web.Response:
    return await _decide(request, False)


async def list_schedules(request: web.Request) -> web.Response:
    if not _authorized(request):
        return _reply(401, {"error": "missing or wrong bearer token"})
    try:
        return web.json_response(await schedule_status(request.app))
    except JournalUnavailable:
        return _reply(503, {"error": "journal unavailable"})


async def run_schedule(request: web.Request) -> web.Response:
    if not _authorized(request):
        return _reply(401, {"error": "missing or wrong bearer token"})
    try:
        decision = await request.app[SCHEDULER].run_now(request.match_info["name"])
    except JournalUnavailable:
        return _reply(503, {"error": "journal unavailable"})
    if decision is None:
        return _reply(404, {"error": "no such schedule"})
    return _reply(202, {"id": decision.id, "state": decision.state, "outcome": decision.outcome})


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
        return _reply(503, {"status": "journal unavailable", "journal": journal.describe()})
    return _reply(
        200,
        {"status": "ok", "journal": journal.describe(), "running_actions": request.app[keys.DISPATCHER].busy},
    )


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Open the journal, recover what an earlier process left open, run housekeeping; at exit, let running
    actions finish (up to shutdown_timeout) before the journal closes."""
    config = app[keys.CONFIG]
    settings = config.schema
    store = open_store(
        config.journal, timeout=settings.journal_timeout, credentials=config.journal_credentials
    )
    journal = Journal(store, app[keys.OWNER])
    await journal.start()
    app[keys.JOURNAL] = journal
    app[keys.RDS] = RdsApi(config.aws) if config.aws else None
    dispatcher = Dispatcher(config, journal, app[keys.METRICS], app[keys.RDS])
    app[keys.DISPATCHER] = dispatcher
    try:
        await dispatcher.recover(first=True)
        app[SCHEDULER] = scheduler = Scheduler(config, dispatcher, app[keys.CLOCK])
        if SCHEDULES not in app:  # a console source registered before start-up stands
            register_schedules(app, SchedulerSource(scheduler))
        await scheduler.start()
        dispatcher.periodic.append(scheduler.tick)
        app[DRILLS] = drills = DrillHousekeeping(config, dispatcher, app[keys.CLOCK])
        await drills.start()
        log.info("journal open", extra={"journal": journal.describe(), "replica": app[keys.OWNER]})
        housekeeping = asyncio.create_task(dispatcher.housekeeping(), name="housekeeping")
        # What start-up built lives as long as the process: out of the collector's way (garbage collected
        # first), so that a full collection, which a large payload's allocations trigger, does not stall the
        # loop walking it.
        gc.collect()
        gc.freeze()
    except BaseException:
        await journal.close()
        raise
    yield
    await drills.stop()
    await dispatcher.shutdown(settings.shutdown_timeout)
    housekeeping.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await housekeeping
    await journal.close()


def make_app(
    config: Config, metrics_: ResponderMetrics | None = None, clock: Clock = system_clock
) -> web.Application:
    """The responder; `config` carries each playbook's action and every known action's counters. `clock` is
    the time the scheduler and the drill sweeper read."""
    app = web.Application(client_max_size=config.schema.max_body_bytes)
    app[keys.CONFIG] = config
    app[keys.CLOCK] = clock
    app[keys.METRICS] = metrics_ or ResponderMetrics(actions=config.actions)
    app[keys.OWNER] = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/actions", list_actions)
    app.router.add_post("/actions/{id}/approve", approve)
    app.router.add_post("/actions/{id}/reject", reject)
    app.router.add_get("/schedules", list_schedules)
    app.router.add_post("/schedules/{name}/run", run_schedule)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    setup_console(app)
    return app
