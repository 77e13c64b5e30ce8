"""The notify side of the outbox: which receivers a change goes to (`router`, given to the journal, which queues
the change in the change's own transaction), and what a receiver is sent for a queued decision (`notice`).

The outbox's rows and their SQL belong to the journal (responder.journal.outbox); this module holds no SQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from responder.approvals.links import approval_url
from responder.journal import ActionRow
from responder.journal.outbox import Router
from responder.notify.config import NotifySettings, Receiver
from responder.notify.model import Digest, Notice
from responder.outcomes import State
from responder.principals import Principal

ACTIONS_PATH = "/ui/actions"


def router(settings: NotifySettings) -> Router | None:
    """The journal's router for `settings`: None when no route is configured (nothing is ever queued)."""
    if not settings.routes:
        return None

    def route(key: str, playbook: str) -> Sequence[str]:
        return [r.name for r in settings.receivers_for(key, playbook)]

    return route


def has_buttons(receiver: Receiver) -> bool:
    """A Slack receiver whose requests pgwarden can verify carries Approve/Reject buttons; others get links."""
    return receiver.kind == "slack" and receiver.signing_secret is not None


def notice(
    row: ActionRow,
    receiver: Receiver,
    settings: NotifySettings,
    principals: Sequence[Principal],
    approvals_needed: int = 1,
) -> Notice:
    """What `receiver` is sent for decision `row` as it is now: its console link and, while it waits for an
    approval, a signed link per approver (receivers without buttons, and only with `public_url`)."""
    base = settings.public_url
    link = f"{base}{ACTIONS_PATH}/{row.id}" if base else None
    links: tuple[tuple[str, str], ...] = ()
    if base and row.state is State.PENDING and not has_buttons(receiver):
        links = tuple((p.name, approval_url(base, p, row.id)) for p in principals if p.can_approve)
    return Notice(row, link, links, approvals_needed)


def digest(count: int, latest: Sequence[int], settings: NotifySettings) -> Digest:
    """One message for the `count` decisions a receiver's rate limit held back (`latest`: the last few),
    linking to the console's list of decisions."""
    base = settings.public_url
    return Digest(count, tuple(latest), f"{base}/ui" if base else None)
