"""The aiohttp application: routes to the handlers (`responder.api`, `responder.ui`) and the resources they use
(`responder.lifecycle`). `make_app(config)` for both the CLI and the tests."""

from __future__ import annotations

import os
import socket
import uuid

from aiohttp import web

from responder import keys, lifecycle
from responder.api import actions, probes, schedules, webhook
from responder.api.slack import setup_slack
from responder.clock import Clock, system_clock
from responder.config import Config
from responder.metrics import ResponderMetrics
from responder.ui.console import setup_console


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
    app.cleanup_ctx.extend(lifecycle.RESOURCES)
    app.on_startup.append(lifecycle.started)
    app.router.add_post("/webhook", webhook.webhook)
    app.router.add_get("/actions", actions.list_actions)
    app.router.add_post("/actions/{id}/approve", actions.approve)
    app.router.add_post("/actions/{id}/reject", actions.reject)
    app.router.add_get("/schedules", schedules.list_schedules)
    app.router.add_post("/schedules/{name}/run", schedules.run_schedule)
    app.router.add_get("/metrics", probes.metrics)
    app.router.add_get("/healthz", probes.healthz)
    setup_slack(app)
    setup_console(app)
    return app
