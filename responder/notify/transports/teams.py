"""Microsoft Teams, through a Workflows webhook ("post to a channel when a webhook request is received"): an
Adaptive Card 1.4 per message, its facts in FactSets, the console link and, for a pending decision, one
"Approve as <name>" link per approver (signed, single-use: responder.approvals.links). A webhook cannot edit
what it posted, so each change of the outcome is a follow-up card quoting the decision's id.
"""

from __future__ import annotations

import json
from typing import Any

from responder.notify.config import Receiver
from responder.notify.content import DRY_RUN_NOTE, Content, content, digest_text, teams_text
from responder.notify.http import check, post_json
from responder.notify.model import Digest, MessageRef, Notice

SERVICE = "teams"
CARD = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.4"
TEXT_CHARS = 2000  # one TextBlock
FACT_CHARS = (1000, 300, 100)  # one fact's value, shorter until the message fits Teams' 28 KB
MAX_BYTES = 26 * 1024
MAX_ACTIONS = 6  # Teams shows at most six actions on a card: the console link and five approvers
COLOUR = {"good": "Good", "attention": "Attention", "warning": "Warning", "accent": "Accent"}

Element = dict[str, Any]


def _text(text: str, **style: Any) -> Element:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _open(title: str, url: str) -> Element:
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def _card(body: list[Element], actions: list[Element]) -> dict[str, Any]:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if actions:
        card["actions"] = actions[:MAX_ACTIONS]
    return {"type": "message", "attachments": [{"contentType": CARD, "contentUrl": None, "content": card}]}


def decision_card(c: Content, follow_up: bool = False) -> dict[str, Any]:
    """The Workflows message for one decision, its facts cut shorter until it fits in a Teams message."""
    for chars in FACT_CHARS:
        card = _decision_card(c, follow_up, chars)
        if len(json.dumps(card).encode()) <= MAX_BYTES:
            break
    return card


def _decision_card(c: Content, follow_up: bool, fact_chars: int) -> dict[str, Any]:
    prefix = f"Update on decision #{c.action_id}: " if follow_up else ""
    body: list[Element] = [
        _text(teams_text(f"{prefix}{c.emoji} {c.title}", 300), size="Medium", weight="Bolder",
              color=COLOUR.get(c.tone, "Default")),
        _text(teams_text(c.headline, TEXT_CHARS)),
    ]  # fmt: skip
    if c.dry_run:
        body.append(_text(f"**Dry run**: {DRY_RUN_NOTE}", color="Warning"))
    for section in c.sections:
        body.append(_text(section.title, weight="Bolder", spacing="Medium"))
        facts = [{"title": f.label, "value": teams_text(f.value, fact_chars)} for f in section.facts]
        body.append({"type": "FactSet", "facts": facts})
    footer = [f"Decision #{c.action_id} · {c.when}"] + ([teams_text(c.decided, 200)] if c.decided else [])
    body.append(_text(" · ".join(footer), isSubtle=True, size="Small"))
    actions = [_open("Open in the pgwarden console", c.link)] if c.link else []
    actions += [_open(f"Approve as {name}"[:60], url) for name, url in c.approval_links]
    return _card(body, actions)


def digest_card(digest: Digest) -> dict[str, Any]:
    title, sentence = digest_text(digest)
    actions = [_open("See them in the pgwarden console", digest.link)] if digest.link else []
    return _card([_text(f"📬 {title}", size="Medium", weight="Bolder"), _text(sentence)], actions)


class TeamsTransport:
    """A Teams channel's Workflows webhook. It answers 202 and no reference: each change is a new card."""

    kind = "teams"

    async def send(
        self, receiver: Receiver, message: Notice | Digest, previous: MessageRef | None
    ) -> MessageRef | None:
        """`previous`, or an empty reference: the next change is then sent as a follow-up."""
        if isinstance(message, Digest):
            body = digest_card(message)
        else:
            body = decision_card(content(message), follow_up=previous is not None)
        answer = await post_json(SERVICE, receiver.url, body)
        check(SERVICE, answer, ok=(200, 201, 202), secrets=(receiver.url,))
        return previous or MessageRef(None, None)


TRANSPORT = TeamsTransport()
