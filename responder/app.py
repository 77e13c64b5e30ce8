"""The aiohttp application: `make_app(config)` for both the CLI and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from responder import keys
from responder.aws import RdsApi
from responder.config import Config
from responder.executor import Executor, Job, log_decision
from responder.guards import decide
from responder.journal import Journal, JournalUnavailable, Recorded, open_store
from responder.metrics import ResponderMetrics
from responder.models import WebhookPayload

log = logging.getLogger("responder")

MAX_LIMIT = 1000
ACTION_OUTCOMES_AT_INTAKE = ("duplicate", "no_target")


def _reply(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)


def _authorized(request: web.Request) -> bool:
    token = request.app[keys.CONFIG].token
    if token is None:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(payload)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


async def _webhook(request: web.Request) -> tuple[int, dict[str, Any]]:
    app = request.app
    config = app[keys.CONFIG]
    if not _authorized(request):
        return 401, {"error": "missing or wrong bearer token"}
    if request.content_length is not None and request.content_length > config.max_body_bytes:
        return 413, {"error": f"body over {config.max_body_bytes} bytes"}
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return 413, {"error": f"body over {config.max_body_bytes} bytes"}
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return 400, {"error": "malformed payload", "reason": f"invalid JSON: {type(exc).__name__}"}
    if not isinstance(raw, dict):
        return 400, {"error": "malformed payload", "reason": "the payload must be a JSON object"}
    try:
        payload = WebhookPayload.model_validate(raw)
    except ValidationError as exc:
        return 400, {"error": "malformed payload", "reason": _reason(exc)}
    except RecursionError:
        return 400, {"error": "malformed payload", "reason": "nested too deeply"}
    decisions = [d for alert in payload.alerts for d in decide(alert, config)]
    metrics = app[keys.METRICS]
    try:
        recorded = await app[keys.JOURNAL].record(decisions) if decisions else []
    except JournalUnavailable as exc:
        metrics.journal_up.set(0)
        log.error("journal unavailable", extra={"journal": app[keys.JOURNAL].describe(), "error": str(exc)})
        return 503, {"error": "journal unavailable; retry later"}
    metrics.journal_up.set(1)
    for alert in payload.alerts:
        metrics.alerts.labels(alert.status).inc()
    _after_journal(app, recorded)
    return 202, {
        "status": "accepted",
        "decisions": [
            {
                "id": r.id,
                "playbook": r.decision.playbook,
                "state": r.state,
                "outcome": r.outcome,
                **({"duplicate_of": r.duplicate_of} if r.duplicate_of else {}),
            }
            for r in recorded
        ],
    }


def _after_journal(app: web.Application, recorded: list[Recorded]) -> None:
    config = app[keys.CONFIG]
    executor = app[keys.EXECUTOR]
    for r in recorded:
        d = r.decision
        playbook = next((p for p in config.playbooks if p.name == d.playbook), None)
        if r.outcome in ACTION_OUTCOMES_AT_INTAKE or r.state == "pending":
            app[keys.METRICS].outcome(d.playbook, d.action, r.outcome or "pending")
        if r.state == "queued" and playbook is not None:
            job = executor.job_for(r.id, d.playbook, d.labels, d.fingerprint)
            if isinstance(job, Job):
                executor.submit(job)
                continue
        if r.outcome is not None or r.state == "pending":
            log_decision(
                r.id, playbook, d.alertname, d.fingerprint, d.target, r.outcome or "pending", d.error
            )


async def webhook(request: web.Request) -> web.Response:
    code, body = await _webhook(request)
    request.app[keys.METRICS].webhooks.labels(str(code)).inc()
    return _reply(code, body)


async def list_actions(request: web.Request) -> web.Response:
    if not _authorized(request):
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
    return _reply(200, {"actions": rows})


async def _decide(request: web.Request, approve: bool) -> web.Response:
    if not _authorized(request):
        return _reply(401, {"error": "missing or wrong bearer token"})
    try:
        action_id = int(request.match_info["id"])
    except ValueError:
        return _reply(404, {"error": "no such action"})
    who = request.headers.get("X-Pgwarden-User", "api")[:100]
    app = request.app
    journal = app[keys.JOURNAL]
    try:
        answer = await journal.decide(action_id, approve, who, app[keys.CONFIG].approval_timeout)
        row = await journal.get(action_id)
    except JournalUnavailable:
        return _reply(503, {"error": "journal unavailable"})
    status = {"approved": 202, "rejected": 200, "not_found": 404, "not_pending": 409, "expired": 410}[answer]
    if row is not None and answer in ("rejected", "expired"):
        app[keys.METRICS].outcome(row["playbook"], row["action"], answer)
    if answer == "approved" and row is not None:
        job = app[keys.EXECUTOR].job_from_row(row)
        if isinstance(job, Job):
            app[keys.EXECUTOR].submit(job)
        else:
            with contextlib.suppress(JournalUnavailable):
                await journal.finish(action_id, "no_target", None, job)
    log.info("approval", extra={"action_id": action_id, "answer": answer, "by": who})
    return _reply(status, {"id": action_id, "result": answer})


async def approve(request: web.Request) -> web.Response:
    return await _decide(request, True)


async def reject(request: web.Request) -> web.Response:
    return await _decide(request, False)


async def metrics(request: web.Request) -> web.Response:
    metrics = request.app[keys.METRICS]
    try:
        async with asyncio.timeout(2):
            metrics.pending.set(await request.app[keys.JOURNAL].pending())
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
        {"status": "ok", "journal": journal.describe(), "running_actions": request.app[keys.EXECUTOR].busy},
    )


async def _housekeeping(app: web.Application) -> None:
    """Heartbeat, recover what dead replicas left running, expire stale approvals."""
    config = app[keys.CONFIG]
    journal = app[keys.JOURNAL]
    metrics_ = app[keys.METRICS]
    period = max(0.2, min(5.0, config.replica_timeout / 3))
    while True:
        await asyncio.sleep(period)
        try:
            for action_id, playbook, action, target in await journal.heartbeat(config.replica_timeout):
                metrics_.outcome(playbook, action, "interrupted")
                log.warning(
                    "action interrupted",
                    extra={"action_id": action_id, "playbook": playbook, "target": target},
                )
            for action_id, playbook, action in await journal.expire_pending(config.approval_timeout):
                metrics_.outcome(playbook, action, "expired")
                log.info("approval expired", extra={"action_id": action_id, "playbook": playbook})
            metrics_.journal_up.set(1)
        except JournalUnavailable as exc:
            metrics_.journal_up.set(0)
            log.warning("journal unavailable", extra={"error": str(exc)})


async def _journal_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    journal = Journal(open_store(config.journal, timeout=config.journal_timeout), app[keys.OWNER])
    await journal.start()
    app[keys.JOURNAL] = journal
    try:
        for action_id, playbook, action, target in await journal.heartbeat(
            config.replica_timeout, first=True
        ):
            app[keys.METRICS].outcome(playbook, action, "interrupted")
            log.warning(
                "action interrupted", extra={"action_id": action_id, "playbook": playbook, "target": target}
            )
        app[keys.METRICS].journal_up.set(1)
        log.info("journal open", extra={"journal": journal.describe(), "replica": app[keys.OWNER]})
        task = asyncio.create_task(_housekeeping(app), name="housekeeping")
    except BaseException:
        await journal.close()
        raise
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await journal.close()


async def _executor_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    app[keys.RDS] = RdsApi(config.aws) if config.aws else None
    executor = Executor(config, app[keys.JOURNAL], app[keys.METRICS], app[keys.RDS])
    app[keys.EXECUTOR] = executor
    yield
    await executor.shutdown(config.shutdown_timeout)


def make_app(config: Config, metrics_: ResponderMetrics | None = None) -> web.Application:
    """The responder; `config` already carries each playbook's action, resolved from a registry at load."""
    app = web.Application(client_max_size=config.max_body_bytes)
    app[keys.CONFIG] = config
    app[keys.METRICS] = metrics_ or ResponderMetrics()
    app[keys.OWNER] = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    app.cleanup_ctx.append(_journal_ctx)
    app.cleanup_ctx.append(_executor_ctx)
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/actions", list_actions)
    app.router.add_post("/actions/{id}/approve", approve)
    app.router.add_post("/actions/{id}/reject", reject)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app
