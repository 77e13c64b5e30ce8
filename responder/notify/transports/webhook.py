"""`webhook`: any HTTP endpoint gets each decision as JSON (as `/actions` shows it, with its console link and
approval links), signed when the receiver has an `hmac_secret`:

    X-Pgwarden-Timestamp: <Unix seconds>
    X-Pgwarden-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>

2xx is delivered; 429 and 5xx (and no answer) are retried with backoff, honouring Retry-After; any other
status is permanent. Errors name the status or the failure's kind, never the URL (it may hold a secret).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp

from responder.notify.config import Receiver
from responder.notify.http import TIMEOUT as HTTP_TIMEOUT
from responder.notify.http import retry_after_seconds
from responder.notify.model import DeliveryError, Digest, MessageRef, Notice

TIMEOUT = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
SIGNATURE_HEADER = "X-Pgwarden-Signature"
TIMESTAMP_HEADER = "X-Pgwarden-Timestamp"
USER_AGENT = "pgwarden-responder"


def payload(message: Notice | Digest) -> dict[str, Any]:
    """The JSON body: a `decision` (with `link`, `approval_links`) or a `digest`."""
    if isinstance(message, Digest):
        return {
            "type": "digest",
            "digest": {"count": message.count, "action_ids": list(message.action_ids), "link": message.link},
        }
    return {
        "type": "decision",
        "decision": message.row.to_json(),
        "link": message.link,
        "approval_links": [{"approver": who, "url": url} for who, url in message.approval_links],
        "approvals_needed": message.approvals_needed,
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of `<timestamp>.<body>` keyed with the receiver's secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookTransport:
    """POSTs on one keep-alive client session per event loop (closed by `aclose` when the sender stops)."""

    kind = "webhook"

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
            self._loop = loop
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()

    async def send(
        self, receiver: Receiver, message: Notice | Digest, previous: MessageRef | None
    ) -> MessageRef | None:
        body = json.dumps(payload(message), default=str, sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if receiver.signing_secret:
            stamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = signature(receiver.signing_secret, stamp, body)
        try:
            async with self._client().post(
                receiver.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                await response.read()
        except TimeoutError:
            raise DeliveryError("no answer within the timeout") from None
        except aiohttp.ClientError as exc:
            # The exception's text may quote the URL: only its kind is said.
            raise DeliveryError(f"could not reach the receiver ({type(exc).__name__})") from None
        if 200 <= status < 300:
            return None
        if status == 429 or status >= 500:
            raise DeliveryError(f"HTTP {status}", retry_after=retry_after)
        raise DeliveryError(f"HTTP {status}", permanent=True)


TRANSPORT = WebhookTransport()
