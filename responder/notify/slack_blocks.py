"""A decision as a Slack message: Block Kit blocks (header, sections, Approve/Reject, context) and the fallback
`text` Slack shows in notifications, every user-controlled value escaped and every part within Slack's limits.

The Approve and Reject buttons carry `action_id` `pgwarden_approve` / `pgwarden_reject` and the decision's id
as their `value`; Slack posts a click to `{public_url}/integrations/slack/interactions` (responder.api.slack).
"""

from __future__ import annotations

from typing import Any

from responder.notify.content import DRY_RUN_NOTE, Content, Section, digest_text, slack_plain, slack_text
from responder.notify.model import Digest

APPROVE_ACTION = "pgwarden_approve"
REJECT_ACTION = "pgwarden_reject"
# Slack's limits (api.slack.com/reference/block-kit): a message's blocks, a section's text, a field, a header.
MAX_BLOCKS = 50
SECTION_CHARS = 3000
FIELD_CHARS = 2000
MAX_FIELDS = 10
HEADER_CHARS = 150
BUTTON_CHARS = 75
MAX_CONTEXT = 10
TEXT_CHARS = 3000  # the fallback text: Slack truncates past 40,000, notifications show far less
LINE_CHARS = 1500  # one fact in a section of lines (labels are the longest)
FACT_FIELDS = ("What", "Where")  # short facts, shown side by side

Block = dict[str, Any]


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": slack_plain(text, limit), "emoji": True}


def _link(url: str, label: str) -> str:
    """A mrkdwn link; the URL is ours (public_url), escaped all the same, and `label` is our own words."""
    return f"<{slack_text(url, 2000)}|{label}>"


def _lines(section: Section) -> Block:
    """`*Title*` then one `*Label:* value` line per fact, whole lines only, within a section's limit."""
    text = f"*{section.title}*"
    for fact in section.facts:
        line = f"\n*{fact.label}:* {slack_text(fact.value, LINE_CHARS)}"
        if len(text) + len(line) > SECTION_CHARS - 2:
            text += "\n…"
            break
        text += line
    return {"type": "section", "text": _mrkdwn(text)}


def _fields(sections: list[Section]) -> Block:
    facts = [f for s in sections for f in s.facts][:MAX_FIELDS]
    return {
        "type": "section",
        "fields": [
            _mrkdwn(f"*{f.label}*\n{slack_text(f.value, FIELD_CHARS - len(f.label) - 3)}") for f in facts
        ],
    }


def _buttons(action_id: int) -> Block:
    value = str(action_id)
    confirm = {
        "title": _plain("Approve this decision?", 100),
        "text": _plain(f"pgwarden runs decision #{action_id} under your name.", 300),
        "confirm": _plain("Approve", 30),
        "deny": _plain("Cancel", 30),
    }
    return {
        "type": "actions",
        "block_id": f"pgwarden_decision_{action_id}",
        "elements": [
            {"type": "button", "action_id": APPROVE_ACTION, "text": _plain("Approve", BUTTON_CHARS),
             "style": "primary", "value": value, "confirm": confirm},
            {"type": "button", "action_id": REJECT_ACTION, "text": _plain("Reject", BUTTON_CHARS),
             "style": "danger", "value": value},
        ],
    }  # fmt: skip


def _approval_links(c: Content) -> Block:
    links = " · ".join(
        _link(url, f"Approve as {slack_text(name, 60)}") for name, url in c.approval_links[:10]
    )
    return {"type": "section", "text": _mrkdwn(f"*Approve in the console:* {links}")}


def decision_blocks(c: Content, *, buttons: bool, follow_up: bool = False) -> list[Block]:
    """The message for one decision. `buttons`: a pending one gets Approve/Reject (else, when it has them, a
    signed console link per approver); `follow_up`: a new message saying it updates an earlier one."""
    prefix = "Update: " if follow_up else ""
    blocks: list[Block] = [
        {"type": "header", "text": _plain(f"{prefix}{c.emoji} {c.title}", HEADER_CHARS)},
        {"type": "section", "text": _mrkdwn(slack_text(c.headline, SECTION_CHARS))},
    ]
    if c.dry_run:
        blocks.append({"type": "section", "text": _mrkdwn(f":test_tube: *Dry run*: {DRY_RUN_NOTE}")})
    side = [s for s in c.sections if s.title in FACT_FIELDS]
    if side:
        blocks.append(_fields(side))
    blocks += [_lines(s) for s in c.sections if s.title not in FACT_FIELDS]
    if c.pending and buttons:
        blocks.append(_buttons(c.action_id))
    elif c.pending and c.approval_links:
        blocks.append(_approval_links(c))
    context = [f"Decision #{c.action_id} · {c.when}"]
    if c.decided:
        context.append(slack_text(c.decided.capitalize(), 200))
    if c.approvals:
        context.append(slack_text(c.approvals, 200))
    if c.link:
        context.append(_link(c.link, "Open in the pgwarden console"))
    blocks.append({"type": "context", "elements": [_mrkdwn(t) for t in context[:MAX_CONTEXT]]})
    return blocks[:MAX_BLOCKS]


def decision_text(c: Content, follow_up: bool = False) -> str:
    """The fallback text (notifications, screen readers): the summary line, escaped."""
    return slack_text(c.summary(follow_up), TEXT_CHARS)


def digest_blocks(digest: Digest) -> tuple[str, list[Block]]:
    """A digest's fallback text and blocks."""
    title, sentence = digest_text(digest)
    text = sentence + (f" {_link(digest.link, 'See them in the pgwarden console')}" if digest.link else "")
    blocks: list[Block] = [
        {"type": "header", "text": _plain(f"📬 {title}", HEADER_CHARS)},
        {"type": "section", "text": _mrkdwn(text[:SECTION_CHARS])},
    ]
    return slack_text(sentence, TEXT_CHARS), blocks
