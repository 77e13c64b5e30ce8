"""PagerDuty, through the Events API v2 change events: each change of a decision's outcome is a change event on
the service of the routing key, beside its incidents (a change event cannot be updated, and pages nobody).

`payload.summary` is the decision in one line (at most 1,024 characters), `payload.custom_details` the journal's
row (plan and result capped), `links` the console. PagerDuty answers 202; 429 is retried after a while, 400 is a
payload or key it will never take (permanent), 5xx retried.
"""

from __future__ import annotations

import json
from typing import Any

from responder.journal.rows import iso_ms
from responder.notify.config import Receiver
from responder.notify.content import Content, capped, content, digest_text
from responder.notify.http import check, post_json
from responder.notify.model import Digest, MessageRef, Notice

SERVICE = "pagerduty"
SUMMARY_CHARS = 1024
SOURCE_CHARS = 255
DETAIL_CHARS = 64_000  # of one plan or result as JSON; a whole event stays far under PagerDuty's 512 KB
SOURCE = "pgwarden-responder"


def _bounded(value: Any) -> Any:
    """`value` as is, or its JSON cut to DETAIL_CHARS when it is longer."""
    text = json.dumps(value, default=str, sort_keys=True)
    return value if len(text) <= DETAIL_CHARS else capped(text, DETAIL_CHARS)


def change_event(routing_key: str, notice: Notice) -> dict[str, Any]:
    """The change event for one decision, as it is now."""
    row, c = notice.row, content(notice)
    details = row.to_json() | {"plan": _bounded(row.plan), "result": _bounded(row.result), "status": c.status}
    details["facts"] = {s.title: {f.label: f.value for f in s.facts} for s in c.sections}
    link = (notice.link, "The decision in the pgwarden console")
    return _event(routing_key, _summary(c), row.target or SOURCE, iso_ms(row.updated_at), details, link)


def _summary(c: Content) -> str:
    return capped(f"pgwarden {c.summary()}", SUMMARY_CHARS)


def digest_event(routing_key: str, digest: Digest) -> dict[str, Any]:
    _, sentence = digest_text(digest)
    details = {"count": digest.count, "action_ids": list(digest.action_ids)}
    link = (digest.link, "The decisions in the pgwarden console")
    return _event(routing_key, f"pgwarden: {sentence}", SOURCE, None, details, link)


def _event(
    routing_key: str,
    summary: str,
    source: str,
    at: str | None,
    details: dict[str, Any],
    link: tuple[str | None, str],
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "summary": capped(summary, SUMMARY_CHARS),
        "source": capped(source, SOURCE_CHARS),
        "custom_details": details,
    }
    if at is not None:
        payload["timestamp"] = at
    event: dict[str, Any] = {"routing_key": routing_key, "payload": payload}
    href, text = link
    if href:
        event["links"] = [{"href": href, "text": text}]
    return event


class PagerDutyTransport:
    """A PagerDuty service's Events API v2 integration (its routing key), sent change events."""

    kind = "pagerduty"

    async def send(
        self, receiver: Receiver, message: Notice | Digest, previous: MessageRef | None
    ) -> MessageRef | None:
        """None: a change event has no reference to keep (the next change is a change event of its own)."""
        key = receiver.token or ""
        event = digest_event(key, message) if isinstance(message, Digest) else change_event(key, message)
        answer = await post_json(SERVICE, receiver.url, event)
        check(SERVICE, answer, ok=(202,), secrets=(key, receiver.url))
        return None


TRANSPORT = PagerDutyTransport()
