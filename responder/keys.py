"""Typed application keys, in one place."""

from __future__ import annotations

from aiohttp import web

from responder.aws import RdsApi
from responder.config import Config
from responder.executor import Executor
from responder.journal import Journal
from responder.metrics import ResponderMetrics

CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", ResponderMetrics)
JOURNAL = web.AppKey("journal", Journal)
RDS = web.AppKey[RdsApi | None]("rds")
EXECUTOR = web.AppKey("executor", Executor)
OWNER = web.AppKey("owner", str)
