"""What a message about a decision says, before any service's format: its parts as plain text.

`content(notice)` reads the decision's row as the journal has it now: what (playbook, action, mode, the exact
plan), where (target, database, instance), why (the alert and its labels, the schedule, or the operator's
command), the result (outcome, result or error, a dry run said plainly), who decided and when, and the
console's link. Alert annotations (summary, runbook) are not journaled, so a message names the alert and its
labels and links to the console, which links to Alertmanager and Grafana.

Every value here is plain, unescaped text; much of it is user-controlled (labels, queries in a plan, errors).
Each format escapes and caps it as it writes it: `slack_text` (mrkdwn: `&<>` and no `@channel`), `teams_text`
(Adaptive Card markdown), `capped` (plain text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, assert_never

from responder.decision import AlertTrigger, OperatorTrigger, ScheduleTrigger
from responder.journal.rows import ActionRow
from responder.notify.model import Digest, Notice
from responder.outcomes import Outcome, State
from responder.ui.timeline import cut, definitions, exact, headline

VALUE_CHARS = 500  # one fact's value, before a format caps the whole text again
LABELS_SHOWN = 20
LABEL_CHARS = 60  # one label's value: a long one must not hide the others
LABELS_CHARS = 1500
ELLIPSIS = "…"
DRY_RUN_NOTE = "nothing is changed in dry-run mode; this is what the playbook would do in enforce mode."

# How each outcome (or state, while there is none) is said: an emoji for chat, a word, and a tone
# (good / attention / warning / accent: Adaptive Card colours, also used for Slack's emoji choice).
STATUS: dict[str, tuple[str, str, str]] = {
    State.PENDING: ("⏳", "waiting for approval", "accent"),
    State.QUEUED: ("▶️", "approved, queued", "accent"),
    State.RUNNING: ("🔄", "running", "accent"),
    Outcome.SUCCEEDED: ("✅", "succeeded", "good"),
    Outcome.FAILED: ("❌", "failed", "attention"),
    Outcome.DRY_RUN: ("🧪", "dry run: nothing changed", "warning"),
    Outcome.DUPLICATE: ("🔁", "duplicate", "default"),
    Outcome.COOLDOWN: ("⏸️", "held back by its cooldown", "warning"),
    Outcome.GUARDRAIL: ("🛡️", "refused by a guardrail", "warning"),
    Outcome.NO_TARGET: ("❔", "no target", "warning"),
    Outcome.REJECTED: ("🚫", "rejected", "default"),
    Outcome.EXPIRED: ("⌛", "not approved in time", "warning"),
    Outcome.INTERRUPTED: ("⚠️", "interrupted", "attention"),
    Outcome.UNMATCHED: ("🔕", "no playbook matched", "default"),
    Outcome.RESOLVED: ("🟢", "alert resolved", "default"),
}


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


@dataclass(frozen=True)
class Section:
    """A titled group of facts: What, Where, Why, Plan, Result."""

    title: str
    facts: tuple[Fact, ...]


@dataclass(frozen=True)
class Content:
    """One decision's message, format-neutral. `sections` are in reading order; empty ones are left out."""

    action_id: int
    emoji: str
    status: str  # "succeeded", "waiting for approval", ...
    tone: str
    name: str  # the playbook (or the alert no playbook matched)
    title: str  # "#42 grow-storage: succeeded"
    headline: str  # the decision in one sentence, the console timeline's words
    sections: tuple[Section, ...]
    link: str | None
    pending: bool
    dry_run: bool
    decided_by: str | None
    decided: str | None  # "approved by alice", "rejected by bob"
    when: str  # "2026-12-07 13:45:12 UTC", the last change
    approval_links: tuple[tuple[str, str], ...]
    approvals: str | None  # "1 of 2 approvals (alice)" under the two-person rule

    def summary(self, follow_up: bool = False) -> str:
        """Title and headline in one line, as a notification or a change event's summary says it."""
        prefix = f"Update on decision #{self.action_id}: " if follow_up else ""
        return f"{prefix}{self.emoji} #{self.action_id} {self.name}: {self.headline}"


def _when(ts: float | None) -> str:
    return exact(datetime.fromtimestamp(ts, UTC)) if ts is not None else "-"


def _value(text: object) -> str:
    return cut(str(text), VALUE_CHARS)


def _facts(*pairs: tuple[str, object]) -> tuple[Fact, ...]:
    """The pairs whose value is given, each value one capped line."""
    return tuple(Fact(label, _value(value)) for label, value in pairs if value not in (None, "", [], {}))


def labels_text(labels: Mapping[str, str]) -> str:
    """`k=v, k=v` of the labels (alertname aside), at most LABELS_SHOWN of them."""
    shown = sorted((str(k), str(v)) for k, v in labels.items() if k != "alertname")
    text = ", ".join(f"{k}={cut(v, LABEL_CHARS)}" for k, v in shown[:LABELS_SHOWN])
    return text + (f" and {len(shown) - LABELS_SHOWN} more" if len(shown) > LABELS_SHOWN else "")


def _labels(text: str) -> tuple[Fact, ...]:
    return (Fact("Labels", cut(text, LABELS_CHARS)),) if text else ()


def _why(row: ActionRow) -> tuple[Fact, ...]:
    labels, trigger = labels_text(row.labels), row.trigger
    match trigger:
        case AlertTrigger(alertname, _, starts_at, status, _):
            return _facts(("Alert", f"{alertname} ({status})"), ("Since", starts_at)) + _labels(labels)
        case ScheduleTrigger(schedule, at, _, run_now):
            said = f"{schedule} (run now from the console)" if run_now else schedule
            return _facts(("Schedule", said), ("Due at", at)) + _labels(labels)
        case OperatorTrigger(command, subject, at, _):
            return _facts(("Command", f"pgwarden-responder {command}"), ("Subject", subject), ("For", at))
        case _:
            assert_never(trigger)


def _where(row: ActionRow) -> tuple[Fact, ...]:
    labels = row.labels
    instance = labels.get("dbidentifier") or labels.get("instance") or labels.get("target")
    return _facts(("Target", row.target), ("Database", labels.get("datname")), ("Instance", instance))


def _definitions(value: Any) -> tuple[Fact, ...]:
    return tuple(Fact(term.capitalize(), _value("; ".join(lines))) for term, lines in definitions(value))


def _approvals(row: ActionRow, needed: int) -> str | None:
    """Under the two-person rule, who has approved so far (the journal's approvals of the decision)."""
    if needed <= 1:
        return None
    names = [a.by for a in row.approvals]
    return f"{len(names)} of {needed} approvals" + (f" ({', '.join(names)})" if names else "")


def _decided(row: ActionRow) -> str | None:
    if row.decided_by is None:
        return None
    verb = "rejected" if row.outcome is Outcome.REJECTED else "approved"
    return f"{verb} by {row.decided_by}"


def content(notice: Notice) -> Content:
    """The message's parts for `notice`'s decision, as the journal has it now."""
    row = notice.row
    key = row.outcome if row.outcome is not None else row.state
    emoji, status, tone = STATUS.get(key, ("💬", str(key), "default"))
    pending = row.state is State.PENDING
    dry_run = row.outcome is Outcome.DRY_RUN or row.mode == "dry-run"
    what = _facts(("Playbook", row.playbook), ("Action", row.action), ("Mode", row.mode))
    result = _facts(
        ("Outcome", status),
        ("Error", row.error),
        ("Decided by", _decided(row)),
        ("Approvals", _approvals(row, notice.approvals_needed)),
        ("Journaled", _when(row.created_at)),
        ("Finished", _when(row.finished_at) if row.finished_at else None),
    )
    plan = _definitions(row.plan) or (
        _facts(("Plan", "made when it runs, after the approval")) if pending else ()
    )
    sections = (
        Section("What", what),
        Section("Where", _where(row)),
        Section("Why", _why(row)),
        Section("Plan", plan),
        Section("Result", result + _definitions(row.result)),
    )
    return Content(
        action_id=row.id,
        emoji=emoji,
        status=status,
        tone=tone,
        name=row.playbook or row.alertname,
        title=f"#{row.id} {row.playbook or row.alertname}: {status}",
        headline=cut(headline(row.to_json()), VALUE_CHARS),
        sections=tuple(s for s in sections if s.facts),
        link=notice.link,
        pending=pending,
        dry_run=dry_run,
        decided_by=row.decided_by,
        decided=_decided(row),
        when=_when(row.updated_at),
        approval_links=notice.approval_links if pending else (),
        approvals=_approvals(row, notice.approvals_needed),
    )


def digest_text(digest: Digest) -> tuple[str, str]:
    """A digest's title and its sentence: how many decisions the rate limit held back, the first few ids."""
    ids = ", ".join(f"#{i}" for i in digest.action_ids)
    more = digest.count - len(digest.action_ids)
    listed = f": {ids}" + (f" and {more} more" if more > 0 and ids else "") if ids else ""
    noun = "decision" if digest.count == 1 else "decisions"
    return (
        f"{digest.count} more {noun}",
        f"{digest.count} more {noun} held back by this receiver's rate limit{listed}",
    )


# ---- escaping and caps, per format ----------------------------------------------------------------------------

_SLACK_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Broadcast words Slack may expand even without the <!...> syntax: a zero-width space after the @ breaks them.
_BROADCAST = re.compile(r"@(?=(channel|here|everyone|group)\b)", re.IGNORECASE)
_TEAMS_SPECIAL = set("\\*_~[]()<>")  # emphasis, links and HTML: what could dress text up as ours


def capped(text: str, limit: int) -> str:
    """Plain text of at most `limit` characters (an ellipsis where it was cut)."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def _escaped(pieces: list[str], limit: int) -> str:
    """Escaped pieces joined, cut before any piece that would pass `limit` (never inside an escape)."""
    if sum(map(len, pieces)) <= limit:
        return "".join(pieces)
    out: list[str] = []
    used = len(ELLIPSIS)
    for piece in pieces:
        if used + len(piece) > limit:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out) + ELLIPSIS


def slack_text(text: str, limit: int) -> str:
    """User text for Slack mrkdwn: `&<>` escaped (so no `<!channel>` or `<url|label>` of its own), `@here` and
    the like broken, at most `limit` characters."""
    text = _BROADCAST.sub("@\u200b", text)
    return _escaped([_SLACK_ESCAPES.get(c, c) for c in text], limit)


def slack_plain(text: str, limit: int) -> str:
    """User text for a Slack plain_text object (not parsed, so not escaped; broadcasts still broken)."""
    return capped(_BROADCAST.sub("@\u200b", text), limit)


def teams_text(text: str, limit: int) -> str:
    """User text for an Adaptive Card TextBlock or fact: the markdown characters of links and emphasis
    backslash-escaped (no `[click](https://evil)` of its own), on one line, at most `limit` characters."""
    text = " ".join(text.split())
    return _escaped([f"\\{c}" if c in _TEAMS_SPECIAL else c for c in text], limit)
