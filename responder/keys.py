"""Typed application keys, every one of the responder's in this one place."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from responder.approvals.slack import Replies
from responder.aws import RdsApi
from responder.config import Config
from responder.dispatcher import Dispatcher
from responder.drills.housekeeping import DrillHousekeeping
from responder.journal import Journal
from responder.metrics import ResponderMetrics
from responder.notify.sender import Sender, SenderTuning
from responder.scheduling.scheduler import Scheduler
from responder.ui.schedules import ScheduleSource
from responder.ui.sessions import SessionStore

CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", ResponderMetrics)
JOURNAL = web.AppKey("journal", Journal)
RDS = web.AppKey[RdsApi | None]("rds")
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
SCHEDULER = web.AppKey("scheduler", Scheduler)
DRILLS = web.AppKey("drill_housekeeping", DrillHousekeeping)  # the sweeper and the drill gauges
OWNER = web.AppKey("owner", str)
NOTIFIER = web.AppKey("notifier", Sender)
NOTIFY_TUNING = web.AppKey(
    "notify_tuning", SenderTuning
)  # set before start-up to change the sender's timings
CLOCK = web.AppKey[Callable[[], datetime]]("clock")
# The console's: its signed-in sessions, and where its schedules page reads from (the scheduler registers
# itself; a test may register another source before start-up).
SESSIONS = web.AppKey("console_sessions", SessionStore)
SCHEDULES = web.AppKey[ScheduleSource]("console_schedules")
# The ephemeral replies to Slack button presses still being posted (responder.api.slack).
SLACK_REPLIES = web.AppKey("slack_replies", Replies)
