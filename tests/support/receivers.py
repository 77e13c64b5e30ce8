"""A local webhook receiver for the notification tests: aiohttp on 127.0.0.1, checking each request the way a
careful consumer of pgwarden's webhook does (the HMAC over `timestamp.body`, compared in constant time, a fresh
timestamp), recording what it accepted, and switchable down (connection refused, or 503) and up again."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

MAX_SKEW = 300  # seconds: an older or newer timestamp is a replay, refused

State = Literal["up", "refused", "503", "429"]


@dataclass
class Delivery:
    """One request the receiver accepted: its JSON body, and when."""

    body: dict[str, Any]
    at: float
    headers: dict[str, str]
    raw: bytes


@dataclass
class WebhookReceiver:
    """Start with `await receiver.start()`; `url` has a secret path (as real webhook URLs do)."""

    hmac_secret: str | None = None
    state: State = "up"
    retry_after: str | None = None  # sent with 429
    delay: float = 0.0  # seconds each answer takes
    secret_path: str = field(default_factory=lambda: "hook-" + secrets.token_hex(12))
    received: list[Delivery] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why requests were refused (bad signature, ...)
    attempts: int = 0  # every request that reached the handler
    port: int = 0
    _runner: web.AppRunner | None = None
    _site: web.SockSite | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.secret_path}"

    async def start(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/{path}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await self._listen()
        return self

    async def _listen(self) -> None:
        """Listen on `port` (a free one the first time, the same one when back up)."""
        assert self._runner is not None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._site = web.SockSite(self._runner, sock)
        await self._site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def down(self, how: State = "refused") -> None:
        """Refuse connections (nothing listens on the port) or answer `how` (503, 429)."""
        if how == "refused" and self._site is not None:
            await self._site.stop()
            self._site = None
        self.state = how

    async def up(self) -> None:
        if self._site is None:
            await self._listen()
        self.state = "up"

    def _verify(self, request: web.Request, body: bytes) -> str | None:
        """Why the request is not pgwarden's (None: it is), as a consumer checks it."""
        if self.hmac_secret is None:
            return None
        stamp = request.headers.get("X-Pgwarden-Timestamp", "")
        given = request.headers.get("X-Pgwarden-Signature", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > MAX_SKEW:
            return "stale or missing timestamp"
        expected = (
            "sha256="
            + hmac.new(self.hmac_secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        )
        if not hmac.compare_digest(expected, given):
            return "bad signature"
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if request.match_info["path"] != self.secret_path:
            return web.Response(status=404)
        if self.state == "503":
            return web.Response(status=503)
        if self.state == "429":
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.Response(status=429, headers=headers)
        body = await request.read()
        why = self._verify(request, body)
        if why is not None:
            self.refused.append(why)
            return web.Response(status=401, text=why)
        if request.content_type != "application/json":
            self.refused.append("not JSON")
            return web.Response(status=415)
        self.received.append(Delivery(json.loads(body), time.time(), dict(request.headers), body))
        self.arrived.set()
        return web.Response(status=204)

    def decisions(self) -> list[dict[str, Any]]:
        """The decisions received, in order (digests left out)."""
        return [d.body for d in self.received if d.body.get("type") == "decision"]

    def digests(self) -> list[dict[str, Any]]:
        return [d.body["digest"] for d in self.received if d.body.get("type") == "digest"]

    async def wait_for(self, count: int, within: float = 10.0) -> list[Delivery]:
        """Until at least `count` requests have been accepted (AssertionError after `within` seconds)."""
        deadline = time.monotonic() + within
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} notifications arrived in {within}s")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), max(0.01, deadline - time.monotonic()))
        return self.received
