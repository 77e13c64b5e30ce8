"""The console for the humans in the loop (`/ui`), server-rendered with Jinja2, and `/reports`.

`setup_console(app)` adds the routes; a scheduler shows up on the schedules page once the app calls
`register_schedules(app, source)` (see `schedules.ScheduleSource`).
"""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from responder.ui import views
from responder.ui.schedules import (
    SCHEDULES,
    SchedulerSource,
    ScheduleSource,
    ScheduleStatus,
    register_schedules,
)
from responder.ui.sessions import SESSIONS, SessionStore

__all__ = [
    "SCHEDULES",
    "ScheduleSource",
    "ScheduleStatus",
    "SchedulerSource",
    "register_schedules",
    "setup_console",
]


def setup_console(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("responder.ui", "templates"),
        autoescape=jinja2.select_autoescape(("html",)),
        undefined=jinja2.StrictUndefined,
    )
    app[SESSIONS] = SessionStore()
    r = app.router
    r.add_get("/ui", views.page(views.timeline))
    r.add_get("/ui/login", views.login_form)
    r.add_post("/ui/login", views.login)
    r.add_post("/ui/logout", views.form(views.logout, approver=False))
    r.add_get("/ui/approvals", views.page(views.approvals))
    r.add_post("/ui/actions/{id}/{verb:approve|reject}", views.form(views.decide))
    r.add_get("/ui/schedules", views.page(views.schedules))
    r.add_post("/ui/schedules/{name}/run", views.form(views.run_schedule))
    r.add_get("/ui/drills", views.page(views.drills))
    r.add_get("/ui/reports", views.page(views.reports_page))
    r.add_get("/reports", views.list_reports)
    r.add_get("/reports/{id}", views.get_report)
