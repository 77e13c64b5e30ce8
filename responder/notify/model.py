"""What a receiver is given to send: one decision as people read it (`Notice`), or a digest of many.

The outbox (responder.notify.outbox) records only that a decision changed and which receiver must hear of
it; the sender reads the decision's current row when it sends, so a message always shows the latest state,
and the receiver's previous message (`MessageRef`) is updated in place (Slack with a bot token) or followed
up. Each kind of receiver is a `Transport` in a module of its own under responder/notify/transports/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from responder.journal.rows import ActionRow
from responder.notify.config import Receiver


@dataclass(frozen=True)
class Notice:
    """One decision: the row as the journal has it now, and where people can look at and decide it."""

    row: ActionRow
    link: str | None  # {public_url}/ui/actions/{id}; None without notify.public_url
    # Pending decisions only: (approver, signed single-use link) for receivers without buttons.
    approval_links: tuple[tuple[str, str], ...] = ()
    approvals_needed: int = 1  # the two-person rule's count; approvals so far are in row.result/approvals


@dataclass(frozen=True)
class Digest:
    """Decisions held back by a receiver's rate limit, said in one message ("12 more decisions")."""

    count: int
    action_ids: tuple[int, ...]  # the first few, newest last
    link: str | None  # the console's list of decisions


@dataclass(frozen=True)
class MessageRef:
    """What a receiver answered for a message, kept to update it or thread under it (Slack: channel and ts)."""

    channel: str | None
    ts: str | None


class DeliveryError(Exception):
    """A send that did not reach the receiver. Retried with backoff unless `permanent` (a 4xx that will not
    change: bad URL, revoked token); `retry_after` is the receiver's own hint (HTTP 429's Retry-After)."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Transport(Protocol):
    """One kind of receiver (`slack`, `teams`, `pagerduty`, `webhook`): how a message reaches it.

    `send` posts a new message, or, given the receiver's previous message for this decision, updates it in
    place or follows it up; it returns the new message's reference (or the previous one when updated), and
    raises DeliveryError. It never logs or raises a receiver's secret (URL, token, key).
    """

    kind: str

    async def send(
        self, receiver: Receiver, message: Notice | Digest, previous: MessageRef | None
    ) -> MessageRef | None: ...
