"""The console's pages and forms, and `/reports`. Every page needs a session (or, for `/reports`, an
approver's, viewer's or the webhook's bearer token); every form post needs the session's CSRF token; only
approvers' forms decide anything."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from responder import keys
from responder.api.auth import Refusal, any_token, bearer
from responder.journal import ActionFilter, ActionRow, JournalUnavailable
from responder.journal.rows import iso_ms
from responder.models import action_id
from responder.outcomes import Answer
from responder.ui.schedules import ScheduleStatus
from responder.ui.sessions import COOKIE, LOGIN_COOKIE, Session, csrf_ok, posted, set_cookie
from responder.ui.timeline import Entry, entry

log = logging.getLogger("responder")

TIMELINE_LIMIT = 200
MAX_FILTER = 256  # longer than any playbook, outcome or target name
Handler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]


UNAVAILABLE = "journal unavailable; retry later"


async def current(request: web.Request) -> Session | None:
    """The request's signed-in session, or None (JournalUnavailable: the journal, which keeps sessions, did
    not answer)."""
    return await request.app[keys.SESSIONS].get(request.cookies.get(COOKIE))


def _page(request: web.Request, session: Session, template: str, **context: Any) -> web.Response:
    return aiohttp_jinja2.render_template(
        template, request, {"request": request, "session": session, "principal": session.principal, **context}
    )


def page(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A GET page: signed in, or sent to the sign-in form; a journal that does not answer is a 503 page."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            session = await current(request)
            if session is None:
                back = request.rel_url.path
                raise web.HTTPSeeOther("/ui/login" if back == "/ui" else f"/ui/login?next={quote(back)}")
            return await handler(request, session)
        except JournalUnavailable:
            return web.Response(status=503, text=UNAVAILABLE)

    return wrapped


def form(handler: Handler, approver: bool = True) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A form post: a session, its CSRF token, and (for anything that decides or runs) an approver."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            session = await current(request)
            data = await posted(request)
            if data is None:
                return web.Response(status=400, text="not a form")
            if session is None or not csrf_ok(session.csrf, data.get("csrf")):
                return web.Response(status=403, text="missing or wrong CSRF token, or not signed in")
            if approver and not session.principal.can_approve:
                return web.Response(status=403, text=f"{session.principal.name} is a viewer")
            return await handler(request, session)
        except JournalUnavailable:
            return web.Response(status=503, text=UNAVAILABLE)

    return wrapped


# ---- sign-in ------------------------------------------------------------------------------------------------


def back_to(value: object) -> str:
    """Where sign-in returns to: a console page's own path (never another site, `//host` or `/\\host`)."""
    if isinstance(value, str) and re.fullmatch(r"/ui/actions/[0-9]{1,18}", value):
        return value
    return "/ui"


async def login_form(request: web.Request) -> web.StreamResponse:
    return _login_page(request, None, back_to(request.query.get("next")))


def _login_page(request: web.Request, error: str | None, back: str, status: int = 200) -> web.Response:
    token = secrets.token_urlsafe(24)
    context = {"csrf": token, "error": error, "next": back}
    response = aiohttp_jinja2.render_template("login.html", request, context, status=status)
    set_cookie(request, response, LOGIN_COOKIE, token, 600)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    data = await posted(request)
    if data is None:
        return web.Response(status=400, text="not a form")
    if not csrf_ok(request.cookies.get(LOGIN_COOKIE, ""), data.get("csrf")):
        return web.Response(status=403, text="missing or wrong CSRF token")
    back = back_to(data.get("next"))
    given = data.get("token")
    principal = request.app[keys.CONFIG].principal(given.strip()) if isinstance(given, str) else None
    if principal is None:
        log.warning("console sign-in refused", extra={"remote": request.remote})
        return _login_page(request, "Not an approver's or a viewer's token.", back, status=401)
    try:
        session = await request.app[keys.SESSIONS].create(principal)
    except JournalUnavailable:
        return web.Response(status=503, text=UNAVAILABLE)
    log.info("console sign-in", extra={"by": principal.name, "role": principal.role})
    response = web.HTTPSeeOther(back)
    set_cookie(request, response, COOKIE, session.id, request.app[keys.SESSIONS].ttl)
    response.del_cookie(LOGIN_COOKIE, path="/")
    raise response


async def logout(request: web.Request, session: Session) -> web.StreamResponse:
    await request.app[keys.SESSIONS].drop(session.id)
    response = web.HTTPSeeOther("/ui/login")
    response.del_cookie(COOKIE, path="/")
    raise response


# ---- pages --------------------------------------------------------------------------------------------------


PENDING = ActionFilter(state="pending", limit=TIMELINE_LIMIT)


def _shown(rows: list[ActionRow]) -> list[dict[str, Any]]:
    """Rows as the templates read them: as `GET /actions` shows them."""
    return [row.to_json() for row in rows]


def _in_words(request: web.Request, rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Entry]]:
    """Each row with its timeline entry (headline, age, plan and result as definitions, links)."""
    now = request.app[keys.CLOCK]()
    console = request.app[keys.CONFIG].schema.console
    return [(r, entry(r, now, console.alertmanager_url, console.grafana_url)) for r in rows]


def filter_problem(name: str, value: str) -> str | None:
    """Why a filter's value can name nothing in the journal (a control character such as NUL, which
    PostgreSQL refuses in text; bytes that are not UTF-8; an absurd length), or None."""
    if len(value) > MAX_FILTER:
        return f"{name}: longer than {MAX_FILTER} characters"
    if "\x00" in value:
        return f"{name}: contains a NUL character"
    if any(unicodedata.category(c) == "Cc" for c in value):
        return f"{name}: contains a control character"
    try:
        value.encode()
    except UnicodeEncodeError:
        return f"{name}: is not valid UTF-8"
    return None


async def timeline(request: web.Request, session: Session) -> web.StreamResponse:
    journal = request.app[keys.JOURNAL]
    chosen = {k: request.query.get(k) or None for k in ("playbook", "outcome", "target")}
    for name, value in chosen.items():
        if value is not None and (problem := filter_problem(name, value)) is not None:
            return web.json_response({"error": "bad filter", "reason": problem}, status=400)
    search = ActionFilter(
        playbook=chosen["playbook"], outcome=chosen["outcome"], target=chosen["target"], limit=TIMELINE_LIMIT
    )
    rows = await journal.find(search)
    pending = await journal.find(PENDING)
    return _page(
        request, session, "timeline.html",
        rows=_in_words(request, _shown(rows)), pending=_in_words(request, _shown(pending)),
        facets=await journal.facets(), chosen=chosen,
    )  # fmt: skip


async def approvals(request: web.Request, session: Session) -> web.StreamResponse:
    pending = await request.app[keys.JOURNAL].find(PENDING)
    return _page(request, session, "approvals.html", pending=_in_words(request, _shown(pending)))


async def decision(request: web.Request, session: Session) -> web.StreamResponse:
    """One decision, where a notification's link points: the timeline's entry, and its buttons while pending."""
    chosen = action_id(request.match_info["id"])
    row = await request.app[keys.JOURNAL].get(chosen) if chosen is not None else None
    if row is None:
        raise web.HTTPNotFound(text="no such decision")
    return _page(request, session, "decision.html", rows=_in_words(request, _shown([row])))


async def decide(request: web.Request, session: Session) -> web.StreamResponse:
    chosen = action_id(request.match_info["id"])
    if chosen is None:
        raise web.HTTPNotFound()
    approve = request.match_info["verb"] == "approve"
    name = session.principal.name
    answer = await request.app[keys.DISPATCHER].decide(chosen, approve, name)
    log.info("approval", extra={"action_id": chosen, "answer": answer.value, "by": name, "via": "console"})
    if answer is Answer.NOT_FOUND:
        raise web.HTTPNotFound()
    raise web.HTTPSeeOther(f"/ui?decided={chosen}&answer={answer.value}")


async def schedules(request: web.Request, session: Session) -> web.StreamResponse:
    source = request.app.get(keys.SCHEDULES)
    items: list[ScheduleStatus] = await source.statuses() if source is not None else []
    return _page(request, session, "schedules.html", schedules=items, configured=source is not None)


async def run_schedule(request: web.Request, session: Session) -> web.StreamResponse:
    source = request.app.get(keys.SCHEDULES)
    name = request.match_info["name"]
    decision = await source.run_now(name) if source is not None else None
    if decision is None:
        raise web.HTTPNotFound(text=f"no schedule named {name!r}")
    log.info(
        "schedule run now", extra={"schedule": name, "action_id": decision, "by": session.principal.name}
    )
    raise web.HTTPSeeOther(f"/ui?decided={decision}")


def last_drill_per_instance(rows: list[ActionRow]) -> list[ActionRow]:
    """The newest finished drill of each instance (rows come newest first)."""
    latest: dict[str, ActionRow] = {}
    for row in rows:
        if row.state != "done":
            continue
        instance = str((row.result or {}).get("dbidentifier") or row.target or "-")
        latest.setdefault(instance, row)
    return [latest[k] for k in sorted(latest)]


async def drills(request: web.Request, session: Session) -> web.StreamResponse:
    rows = await request.app[keys.JOURNAL].find(ActionFilter(action="restore_drill", limit=TIMELINE_LIMIT))
    return _page(
        request, session, "drills.html", latest=_shown(last_drill_per_instance(rows)), rows=_shown(rows)
    )


async def _reports(request: web.Request) -> list[ActionRow]:
    return await request.app[keys.JOURNAL].find(
        ActionFilter(action="maintenance_report", outcome="succeeded", limit=TIMELINE_LIMIT)
    )


async def reports_page(request: web.Request, session: Session) -> web.StreamResponse:
    return _page(request, session, "reports.html", reports=_shown(await _reports(request)))


# ---- /reports: a session or a bearer token ------------------------------------------------------------------


async def _session_or_token(request: web.Request) -> Refusal | None:
    """What the token API's readers present (`responder.api.auth.any_token`), or a console session."""
    if any_token(request) is None:
        return None
    try:
        return None if await current(request) is not None else any_token(request)
    except JournalUnavailable:
        return 503, "journal unavailable"


def _summary(row: ActionRow) -> dict[str, Any]:
    result = row.result or {}
    return {
        "id": row.id,
        "report_id": result.get("report_id"),
        "period": result.get("period"),
        "verdicts": result.get("verdicts", {}),
        "finished_at": iso_ms(row.finished_at),
        "url": f"/reports/{row.id}",
    }


@bearer(_session_or_token)
async def list_reports(request: web.Request) -> web.StreamResponse:
    try:
        rows = await _reports(request)
    except JournalUnavailable:
        return web.json_response({"error": "journal unavailable"}, status=503)
    return web.json_response({"reports": [_summary(r) for r in rows]})


@bearer(_session_or_token)
async def get_report(request: web.Request) -> web.StreamResponse:
    chosen = action_id(request.match_info["id"])
    try:
        row = await request.app[keys.JOURNAL].get(chosen) if chosen is not None else None
    except JournalUnavailable:
        return web.json_response({"error": "journal unavailable"}, status=503)
    if row is None or row.action != "maintenance_report" or row.outcome != "succeeded" or row.result is None:
        return web.json_response({"error": "no such report"}, status=404)
    markdown = request.query.get("format") == "markdown"
    path = Path(row.result["markdown" if markdown else "html"])  # written by the action, not by a client
    try:
        body = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except OSError:
        return web.json_response({"error": "the report's file is gone"}, status=410)
    content_type = "text/markdown" if markdown else "text/html"
    return web.Response(
        text=body,
        content_type=content_type,
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:"},
    )
