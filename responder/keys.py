"""Typed application keys, in one place."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from responder.aws import RdsApi
from responder.config import Config
from responder.dispatcher import Dispatcher
from responder.journal import Journal
from responder.metrics import ResponderMetrics

CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", ResponderMetrics)
JOURNAL = web.AppKey("journal", Journal)
RDS = web.AppKey[RdsApi | None]("rds")
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
OWNER = web.AppKey("owner", str)
CLOCK = web.AppKey[Callable[[], datetime]]("clock")
