"""Slack, Teams and PagerDuty on 127.0.0.1: aiohttp servers that check each request the way the services do
and keep what they accepted, for the notify transports' tests (and the docs' screenshot).

- `SlackApi`: the Web API a bot token calls (chat.postMessage, chat.update): `Authorization: Bearer xoxb-…`,
  a JSON or form body, Block Kit checked (`block_errors`), known channels only, a `ts` per message, updates of
  existing messages only; `ratelimited` with Retry-After, or any error, on demand (`fail_next`); its channel
  drawn as HTML at `/preview`.
- `SlackWebhook`: an incoming webhook: answers `ok`, or 400 `invalid_blocks` / `no_text`, 404 `no_service`.
- `TeamsWorkflow`: a Workflows webhook: the message envelope and the Adaptive Card's essentials, 202.
- `PagerDutyEvents`: Events API v2 change events: routing key of 32 characters, required fields, 202.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from devtools.pgserver import free_port
from devtools.slack_preview import page

# ---- Block Kit, as Slack checks it (api.slack.com/reference/block-kit) ----------------------------------------

BLOCK_TYPES = {"header", "section", "context", "actions", "divider", "image", "rich_text", "input"}
TEXT_TYPES = {"plain_text", "mrkdwn"}


def _text_errors(obj: Any, where: str, limit: int, plain: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in TEXT_TYPES or not isinstance(obj.get("text"), str):
        return [f"{where}: must be a text object"]
    if plain and obj["type"] != "plain_text":
        return [f"{where}: must be plain_text"]
    if not obj["text"]:
        return [f"{where}: must not be empty"]
    if len(obj["text"]) > limit:
        return [f"{where}: must be less than {limit + 1} characters"]
    return []


def _button_errors(el: dict[str, Any], where: str, action_ids: set[str]) -> list[str]:
    errors = _text_errors(el.get("text"), f"{where}/text", 75, plain=True)
    action_id = el.get("action_id")
    if not isinstance(action_id, str) or not 0 < len(action_id) <= 255:
        errors.append(f"{where}/action_id: required, at most 255 characters")
    elif action_id in action_ids:
        errors.append(f"{where}/action_id: duplicate {action_id}")
    else:
        action_ids.add(action_id)
    if "value" in el and (not isinstance(el["value"], str) or len(el["value"]) > 2000):
        errors.append(f"{where}/value: at most 2000 characters")
    if "url" not in el and "value" not in el:
        errors.append(f"{where}: a button needs a value or a url")
    if el.get("style") not in (None, "primary", "danger"):
        errors.append(f"{where}/style: primary or danger")
    if "confirm" in el:
        confirm = el["confirm"]
        for key, limit in (("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)):
            errors += _text_errors(confirm.get(key), f"{where}/confirm/{key}", limit, plain=key != "text")
    return errors


def block_errors(blocks: Any) -> list[str]:
    """What Slack's `invalid_blocks` would list for `blocks` (empty: valid)."""
    if not isinstance(blocks, list):
        return ["blocks: must be an array"]
    errors = [] if len(blocks) <= 50 else ["blocks: no more than 50 items allowed"]
    action_ids: set[str] = set()
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            errors.append(f"{at}: unknown block type {kind!r}")
            continue
        if "block_id" in block:
            if block["block_id"] in block_ids or len(str(block["block_id"])) > 255:
                errors.append(f"{at}/block_id: unique, at most 255 characters")
            block_ids.add(block["block_id"])
        if kind == "header":
            errors += _text_errors(block.get("text"), f"{at}/text", 150, plain=True)
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                errors.append(f"{at}: a section needs text or fields")
            if "text" in block:
                errors += _text_errors(block["text"], f"{at}/text", 3000)
            fields = block.get("fields", [])
            if not isinstance(fields, list) or len(fields) > 10:
                errors.append(f"{at}/fields: no more than 10 items allowed")
            else:
                for j, f in enumerate(fields):
                    errors += _text_errors(f, f"{at}/fields/{j}", 2000)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= 10:
                errors.append(f"{at}/elements: 1 to 10 items")
            else:
                for j, el in enumerate(elements):
                    errors += _text_errors(el, f"{at}/elements/{j}", 3000)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= 25:
                errors.append(f"{at}/elements: 1 to 25 items")
                continue
            for j, el in enumerate(elements):
                if el.get("type") != "button":
                    errors.append(f"{at}/elements/{j}: only buttons are checked here")
                else:
                    errors += _button_errors(el, f"{at}/elements/{j}", action_ids)
    return errors


# ---- serving ----------------------------------------------------------------------------------------------------


@dataclass
class Failure:
    """The next `times` requests are answered this way instead."""

    status: int
    body: Any  # a dict (JSON) or text
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)


class LocalService:
    """An aiohttp app on 127.0.0.1 (a free port): `url` while `serving()`; `requests` every request's body and
    headers as received; `fail_next` makes the next requests fail."""

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[tuple[str, dict[str, str], Any]] = []  # (path, headers, body)
        self.failures: list[Failure] = []

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def fail_next(
        self, status: int, body: Any, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        self.failures.append(Failure(status, body, times, dict(headers or {})))

    def _injected(self) -> web.Response | None:
        if not self.failures:
            return None
        failure = self.failures[0]
        failure.times -= 1
        if failure.times <= 0:
            self.failures.pop(0)
        if isinstance(failure.body, dict):
            return web.json_response(failure.body, status=failure.status, headers=failure.headers)
        return web.Response(text=str(failure.body), status=failure.status, headers=failure.headers)

    async def _record(self, request: web.Request) -> Any:
        raw = await request.read()
        body: Any
        if request.content_type == "application/x-www-form-urlencoded":
            body = dict((await request.post()).items())
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        self.requests.append((request.path, dict(request.headers), body))
        return body

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        app = web.Application()
        app.add_routes(self.routes())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        try:
            yield self.url
        finally:
            await runner.cleanup()


# ---- Slack ------------------------------------------------------------------------------------------------------


class SlackApi(LocalService):
    """Slack's Web API for one bot token; channels by name or id. `messages[(channel_id, ts)]` is what each
    message shows now (its text and blocks), as a Slack client would render it."""

    def __init__(self, token: str, channels: dict[str, str] | None = None) -> None:
        super().__init__()
        self.token = token
        self.channels = channels or {"#db-oncall": "C0DBONCALL"}  # name -> id
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.edited: set[tuple[str, str]] = set()
        self._ts = itertools.count(1)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/{method}", self._call), web.get("/preview", self._preview)]

    async def _preview(self, request: web.Request) -> web.Response:
        """The channel's messages drawn as Slack would (devtools/slack_preview.py), for a screenshot."""
        name = next(iter(self.channels))
        shown = [
            (m["blocks"], "12:00" + (" (edited)" if key in self.edited else ""), None)
            for key, m in self.messages.items()
        ]
        return web.Response(text=page(name, shown), content_type="text/html")

    def _channel(self, name: Any) -> str | None:
        if name in self.channels.values():
            return str(name)
        return self.channels.get(str(name))

    async def _call(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if (injected := self._injected()) is not None:
            return injected
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return web.json_response({"ok": False, "error": "not_authed"})
        if auth != f"Bearer {self.token}" or not self.token.startswith("xoxb-"):
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if not isinstance(body, dict):
            return web.json_response({"ok": False, "error": "invalid_json"})
        if isinstance(body.get("blocks"), str):  # a form body carries its blocks as JSON text
            body["blocks"] = json.loads(body["blocks"])
        method = request.match_info["method"]
        if method not in ("chat.postMessage", "chat.update"):
            return web.json_response({"ok": False, "error": "unknown_method"}, status=404)
        if not body.get("text") and not body.get("blocks"):
            return web.json_response({"ok": False, "error": "no_text"})
        if "blocks" in body and (errors := block_errors(body["blocks"])):
            return web.json_response({"ok": False, "error": "invalid_blocks", "errors": errors})
        if method == "chat.postMessage":
            channel = self._channel(body.get("channel"))
            if channel is None:
                return web.json_response({"ok": False, "error": "channel_not_found"})
            ts = f"1765000000.{next(self._ts):06d}"
        else:
            channel, ts = str(body.get("channel")), str(body.get("ts"))
            if channel not in self.channels.values():
                return web.json_response({"ok": False, "error": "channel_not_found"})
            if (channel, ts) not in self.messages:
                return web.json_response({"ok": False, "error": "message_not_found"})
        message = {"text": body.get("text", ""), "blocks": body.get("blocks", [])}
        if method == "chat.update":
            self.edited.add((channel, ts))
        self.messages[(channel, ts)] = message
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})


class SlackWebhook(LocalService):
    """An incoming webhook at `/services/T0/B0/{secret}`: `posted` are the messages it accepted, in order."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.posted: list[dict[str, Any]] = []

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/services/T0/B0/{self.secret}"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/services/{team}/{bot}/{secret}", self._post)]

    async def _post(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if (injected := self._injected()) is not None:
            return injected
        if request.match_info["secret"] != self.secret:
            return web.Response(status=404, text="no_service")
        if not isinstance(body, dict) or not request.content_type.startswith("application/json"):
            return web.Response(status=400, text="invalid_payload")
        if not body.get("text") and not body.get("blocks"):
            return web.Response(status=400, text="no_text")
        if "blocks" in body and block_errors(body["blocks"]):
            return web.Response(status=400, text="invalid_blocks")
        self.posted.append(body)
        return web.Response(text="ok")


# ---- Teams ------------------------------------------------------------------------------------------------------

CARD_ELEMENTS = {
    "TextBlock",
    "FactSet",
    "Container",
    "ColumnSet",
    "Image",
    "ActionSet",
    "RichTextBlock",
    "Table",
}
CARD_ACTIONS = {
    "Action.OpenUrl",
    "Action.Submit",
    "Action.ShowCard",
    "Action.ToggleVisibility",
    "Action.Execute",
}
TEAMS_MAX_BYTES = 28 * 1024


def card_errors(message: Any) -> list[str]:
    """What a Teams Workflows webhook refuses in `message` (the envelope and the Adaptive Card's essentials)."""
    if not isinstance(message, dict) or message.get("type") != "message":
        return ["type: must be 'message'"]
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1:
        return ["attachments: exactly one card"]
    attachment = attachments[0]
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        return ["contentType: must be application/vnd.microsoft.card.adaptive"]
    card = attachment.get("content")
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        return ["content.type: must be AdaptiveCard"]
    errors = []
    if card.get("version") not in ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5"):
        errors.append(f"content.version: {card.get('version')!r} is not one Teams renders")
    for i, el in enumerate(card.get("body", [])):
        kind = el.get("type")
        if kind not in CARD_ELEMENTS:
            errors.append(f"body[{i}]: unknown element {kind!r}")
        elif kind == "TextBlock" and not isinstance(el.get("text"), str):
            errors.append(f"body[{i}].text: required")
        elif kind == "FactSet" and not all(
            isinstance(f.get("title"), str) and isinstance(f.get("value"), str) for f in el.get("facts", [])
        ):
            errors.append(f"body[{i}].facts: each needs a title and a value")
    for i, action in enumerate(card.get("actions", [])):
        if action.get("type") not in CARD_ACTIONS:
            errors.append(f"actions[{i}]: unknown action {action.get('type')!r}")
        elif action["type"] == "Action.OpenUrl" and not str(action.get("url", "")).startswith(
            ("http://", "https://")
        ):
            errors.append(f"actions[{i}].url: an absolute URL")
    if len(json.dumps(message).encode()) > TEAMS_MAX_BYTES:
        errors.append("the message is larger than 28 KB")
    return errors


class TeamsWorkflow(LocalService):
    """A Workflows webhook at `/workflows/{secret}`: `cards` are the Adaptive Cards it posted, in order."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.cards: list[dict[str, Any]] = []

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/workflows/{self.secret}/triggers/manual/paths/invoke"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/workflows/{secret}/triggers/manual/paths/invoke", self._post)]

    async def _post(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if (injected := self._injected()) is not None:
            return injected
        if request.match_info["secret"] != self.secret:
            return web.json_response({"error": {"code": "WorkflowNotFound"}}, status=404)
        if errors := card_errors(body):
            return web.json_response(
                {"error": {"code": "InvalidRequestContent", "message": errors}}, status=400
            )
        self.cards.append(body["attachments"][0]["content"])
        return web.Response(status=202)


# ---- PagerDuty --------------------------------------------------------------------------------------------------


def change_event_errors(event: Any) -> list[str]:
    """What PagerDuty's Events API v2 says is invalid in a change event."""
    if not isinstance(event, dict):
        return ["Event object is invalid"]
    errors = []
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("'routing_key' must be 32 characters")
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return [*errors, "'payload' is missing or invalid"]
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary:
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > 1024:
        errors.append("'payload.summary' is longer than 1024 characters")
    if "timestamp" in payload:
        try:
            datetime.fromisoformat(str(payload["timestamp"]).replace("Z", "+00:00"))
        except ValueError:
            errors.append("'payload.timestamp' is not ISO 8601")
    if "source" in payload and not isinstance(payload["source"], str):
        errors.append("'payload.source' must be a string")
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        errors.append("'payload.custom_details' must be an object")
    for i, link in enumerate(event.get("links", [])):
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            errors.append(f"'links[{i}].href' is required")
    return errors


class PagerDutyEvents(LocalService):
    """`/v2/change/enqueue`; `events` are the change events it accepted, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    @property
    def change_url(self) -> str:
        return f"{self.url}/v2/change/enqueue"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v2/change/enqueue", self._enqueue)]

    async def _enqueue(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if (injected := self._injected()) is not None:
            return injected
        if errors := change_event_errors(body):
            invalid = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
            return web.json_response(invalid, status=400)
        self.events.append(body)
        return web.json_response({"status": "success", "message": "Change event processed"}, status=202)
