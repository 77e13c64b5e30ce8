"""The console wired into an app: its templates, sessions and routes, and the schedules page's source."""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from responder import keys
from responder.ui import confirm, views
from responder.ui.schedules import ScheduleSource
from responder.ui.sessions import SessionStore


def setup_console(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("responder.ui", "templates"),
        autoescape=jinja2.select_autoescape(("html",)),
        undefined=jinja2.StrictUndefined,
    )
    app[keys.SESSIONS] = SessionStore(lambda: app[keys.JOURNAL], app[keys.CONFIG].principals)
    r = app.router
    r.add_get("/ui", views.page(views.timeline))
    r.add_get("/ui/login", views.login_form)
    r.add_post("/ui/login", views.login)
    r.add_post("/ui/logout", views.form(views.logout, approver=False))
    r.add_get("/ui/approvals", views.page(views.approvals))
    r.add_get("/ui/actions/{id}", views.page(views.decision))
    r.add_post("/ui/actions/{id}/{verb:approve|reject}", views.form(views.decide))
    r.add_get("/ui/confirm/{token}", confirm.show)
    r.add_post("/ui/confirm/{token}", confirm.decide)
    r.add_get("/ui/schedules", views.page(views.schedules))
    r.add_post("/ui/schedules/{name}/run", views.form(views.run_schedule))
    r.add_get("/ui/drills", views.page(views.drills))
    r.add_get("/ui/reports", views.page(views.reports_page))
    r.add_get("/reports", views.list_reports)
    r.add_get("/reports/{id}", views.get_report)


def register_schedules(app: web.Application, source: ScheduleSource) -> None:
    """Call before the app starts (in `make_app`, or in a cleanup context ahead of the first request)."""
    app[keys.SCHEDULES] = source
