"""One JSON POST to a receiver, and what its HTTP status means for the outbox: done, retry (when), or give up.

A receiver's URL is often its secret (a Slack or Teams webhook), so nothing here ever puts a URL, a request or
an exception's own text into a DeliveryError: only the service's name, a status, the exception's type, and
the receiver's answer with every secret scrubbed out of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from responder.notify.model import DeliveryError

TIMEOUT = 10.0  # seconds for one request: a receiver slower than this is retried later
DETAIL_CHARS = 200  # of a receiver's error answer, in the DeliveryError
SECRET_PART_CHARS = 16  # a path segment or query value this long may be a webhook's secret


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    retry_after: str | None  # the Retry-After header, as sent


def unreachable(service: str, exc: BaseException) -> DeliveryError:
    """A transport failure (refused, reset, timed out): retried; the exception's text (it may name the URL)
    left out."""
    return DeliveryError(f"{service}: could not reach the receiver ({type(exc).__name__})")


async def post_json(service: str, url: str, body: Any, headers: Mapping[str, str] | None = None) -> Answer:
    """POST `body` as JSON; the answer, whatever its status. DeliveryError (retried) when it cannot be had."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session,
            session.post(url, json=body, headers=headers) as resp,
        ):
            return Answer(resp.status, await resp.text(), resp.headers.get("Retry-After"))
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise unreachable(service, exc) from None


def retry_after_seconds(header: str | None, now: datetime | None = None) -> float | None:
    """Retry-After in seconds: a number of seconds, or an HTTP date; None when absent or unreadable."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def url_secrets(url: str) -> list[str]:
    """What of a webhook URL is secret: the URL, and each long part of its path and query (a token, an id, a
    signature), should a receiver echo one of them alone."""
    parts = urlsplit(url)
    pieces = [*parts.path.split("/"), *(v for _, v in parse_qsl(parts.query))]
    return [url, *(p for p in pieces if len(p) >= SECRET_PART_CHARS)]


def scrubbed(text: str, secrets: Iterable[str | None]) -> str:
    """`text` without any of `secrets` in it (a URL's secret parts too), short and on one line."""
    for secret in secrets:
        for value in url_secrets(secret) if secret and "://" in secret else [secret]:
            if value:
                text = text.replace(value, "***")
    return " ".join(text.split())[:DETAIL_CHARS]


def check(service: str, answer: Answer, ok: Iterable[int], secrets: Iterable[str | None]) -> None:
    """Nothing when the status is one of `ok`; else the DeliveryError it means: 429 (and 408) retried, after
    the receiver's Retry-After when it gives one; 5xx retried; any other 4xx permanent (a bad or revoked URL or
    key, a payload the service refuses: sending it again will not help)."""
    if answer.status in ok:
        return
    detail = scrubbed(answer.text, secrets)
    message = f"{service}: HTTP {answer.status}" + (f": {detail}" if detail else "")
    if answer.status in (408, 429):
        raise DeliveryError(message, retry_after=retry_after_seconds(answer.retry_after))
    raise DeliveryError(message, permanent=400 <= answer.status < 500)
