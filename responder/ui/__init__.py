"""The console for the humans in the loop (`/ui`), server-rendered with Jinja2, and `/reports`.

`responder.ui.console.setup_console(app)` adds the routes; a scheduler shows up on the schedules page once it
calls `register_schedules(app, source)` there (see `schedules.ScheduleSource`). This package's own module
imports nothing, so that `responder.keys` can name the console's types without a cycle through the views.
"""

from __future__ import annotations

from responder.ui.schedules import ScheduleSource, ScheduleStatus

__all__ = ["ScheduleSource", "ScheduleStatus"]
