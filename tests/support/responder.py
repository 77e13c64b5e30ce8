"""Helpers for the responder tests: tokens, the `record` test action, configs and the test client's types."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from pgwarden.durations import Duration
from responder.config import Config
from responder.core import ActionContext, ActionParams

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
APPROVER = "alice-approver-token-0123"  # approvals take an approver's own token, never the webhook's
APPROVE = {"Authorization": f"Bearer {APPROVER}"}


class RecordParams(ActionParams):
    sleep: Duration = 0.0
    fail: bool = False


class Recorder:
    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    async def run(self, ctx: ActionContext[RecordParams]) -> dict[str, Any]:
        params = ctx.params
        await ctx.save_plan({"target": ctx.target.key})
        if ctx.dry_run:
            return {"would": "record"}
        self.runs.append({"id": ctx.action_id, "target": ctx.target.key, "playbook": ctx.playbook})
        if params.sleep:
            await asyncio.sleep(params.sleep)
        if params.fail:
            raise RuntimeError("boom")
        return {"recorded": True}


ConfigFactory = Callable[..., Config]


def record_playbook(**fields: Any) -> dict[str, Any]:
    """The `rec` playbook: the `record` action on TestAlert, with these fields on top."""
    return {"name": "rec", "match": {"alertname": "TestAlert"}, "action": "record", **fields}


def raw_config(folder: Path, **overrides: Any) -> dict[str, Any]:
    """A configuration as its YAML holds it; defaults: token auth, SQLite journal in `folder`, one dummy target,
    enforce, the `rec` playbook."""
    raw: dict[str, Any] = {
        "mode": "enforce",
        "token": TOKEN,
        "journal": f"sqlite:///{folder / 'journal.db'}",
        "targets": [{"name": "production", "dsn": "postgresql://nobody@127.0.0.1:1/none"}],
        "playbooks": [record_playbook()],
    }
    raw.update(overrides)
    return raw


def config_file(folder: Path, **overrides: Any) -> Path:
    """`raw_config(folder, **overrides)` written to `folder`/responder.yml, for a responder run as a process."""
    path = folder / "responder.yml"
    path.write_text(yaml.safe_dump(raw_config(folder, **overrides)))
    return path


ClientFactory = Callable[[Config], Awaitable[TestClient[web.Request, web.Application]]]
