"""The notification outbox: which receiver must hear of which decision's change, written in the transaction of the
change itself (a transactional outbox: a decision cannot be journaled without its notices, nor lose them in a
crash), then claimed, sent and marked by the sender (responder.notify.sender) under a lease.

A row is one change of one decision for one receiver (`change`: the state or outcome it reached, or
`approved`). The sender claims due rows with a lease (`claimed_by`, `lease_until`; PostgreSQL: `FOR UPDATE SKIP
LOCKED`, so replicas never claim the same row), sends each (decision, receiver) once for all its claimed rows,
and marks them `sent`, `digested` (said in a rate limit's digest) or `gave_up`. A claimed row whose lease
lapsed (its replica died mid-send) is claimed again. `pgwarden_messages` keeps, per (decision, receiver), the
reference of the message sent, to update it in place or follow it up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from responder.journal.reads import with_approvals
from responder.journal.rows import COLUMNS, ActionRow
from responder.journal.tx import Tx

# Which receivers hear of a change: (route key: an outcome or `pending`, playbook) -> receiver names.
Router = Callable[[str, str], Sequence[str]]

APPROVED = "approved"  # the change of a pending decision approved; routed as `pending` was
SENT, DIGESTED, GAVE_UP = "sent", "digested", "gave_up"

_COLUMNS = "id, action_id, receiver, change, created_at, attempts, held"
_INSERT = (
    "INSERT INTO pgwarden_outbox (action_id, receiver, change, created_at, attempts, next_attempt_at, held)"
    " VALUES (?, ?, ?, ?, 0, ?, 0)"
)


def v2_statements(postgres: bool) -> list[str]:
    """Migration 2: the outbox and the messages sent."""
    ident = "BIGSERIAL PRIMARY KEY" if postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"
    return [
        f"""CREATE TABLE pgwarden_outbox (
            id {ident},
            action_id BIGINT NOT NULL, receiver TEXT NOT NULL, change TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at DOUBLE PRECISION NOT NULL,
            held INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT, lease_until DOUBLE PRECISION,
            sent_at DOUBLE PRECISION, outcome TEXT)""",
        "CREATE INDEX pgwarden_outbox_due ON pgwarden_outbox (next_attempt_at) WHERE sent_at IS NULL",
        "CREATE INDEX pgwarden_outbox_action ON pgwarden_outbox (action_id, receiver)",
        "CREATE INDEX pgwarden_outbox_sent ON pgwarden_outbox (sent_at)",
        "CREATE INDEX pgwarden_outbox_receiver ON pgwarden_outbox (receiver, claimed_by) WHERE sent_at IS NULL",
        """CREATE TABLE pgwarden_messages (
            action_id BIGINT NOT NULL, receiver TEXT NOT NULL,
            channel TEXT, ts TEXT, updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (action_id, receiver))""",
    ]


def note(
    tx: Tx, route: Router | None, action_id: int, playbook: str | None, change: str, *, follow_up: bool = True
) -> None:
    """Queue `change` of decision `action_id` for every receiver a route sends it to (nothing when none does);
    with `follow_up`, also for every receiver that heard of the decision before, so a message is never left
    showing a state the decision has left."""
    if route is None:
        return
    key = "pending" if change == APPROVED else change
    names = list(route(key, playbook or ""))
    now = tx.now()
    for name in names:
        tx.execute(_INSERT, (action_id, name, change, now, now))
    if follow_up:
        others = f" AND receiver NOT IN ({', '.join('?' for _ in names)})" if names else ""
        tx.execute(
            "INSERT INTO pgwarden_outbox (action_id, receiver, change, created_at, attempts, next_attempt_at,"
            " held) SELECT DISTINCT action_id, receiver, ?, ?, 0, ?, 0 FROM pgwarden_outbox"
            f" WHERE action_id = ?{others}",
            (change, now, now, action_id, *names),
        )


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One queued change of one decision for one receiver."""

    id: int
    action_id: int
    receiver: str
    change: str
    created_at: float
    attempts: int
    held: bool  # held back by the receiver's rate limit: said in its next digest


def _rows(found: Iterable[Sequence[object]]) -> list[OutboxRow]:
    return [
        OutboxRow(int(str(r[0])), int(str(r[1])), str(r[2]), str(r[3]), float(str(r[4])), int(str(r[5])),
                  bool(r[6]))
        for r in found
    ]  # fmt: skip


def _lease(tx: Tx, ids: Sequence[int], owner: str, until: float) -> None:
    if ids:
        tx.execute(
            f"UPDATE pgwarden_outbox SET claimed_by = ?, lease_until = ? WHERE id IN ({_marks(ids)})",
            (owner, until, *ids),
        )


def _marks(ids: Sequence[object]) -> str:
    return ", ".join("?" for _ in ids)


# Unsent, due, not leased by another replica, and no row of the same (decision, receiver) leased by another
# replica (it is being sent there; this one waits for that message's reference).
_CLAIMABLE = (
    "o.sent_at IS NULL AND (o.lease_until IS NULL OR o.lease_until < ? OR o.claimed_by = ?)"
    " AND NOT EXISTS (SELECT 1 FROM pgwarden_outbox b WHERE b.action_id = o.action_id AND b.receiver = o.receiver"
    " AND b.sent_at IS NULL AND b.lease_until >= ? AND b.claimed_by <> ?)"
)


def op_claim_due(
    owner: str, lease: float, limit: int, skip_receivers: Sequence[str] = ()
) -> Callable[[Tx], list[OutboxRow]]:
    """Lease up to `limit` due rows to `owner` for `lease` seconds (each claimed by one replica only), none of
    `skip_receivers` (over their rate limit here)."""

    def run(tx: Tx) -> list[OutboxRow]:
        now = tx.now()
        skip = " FOR UPDATE OF o SKIP LOCKED" if tx.postgres else ""
        others = f" AND o.receiver NOT IN ({_marks(skip_receivers)})" if skip_receivers else ""
        found = tx.execute(
            f"SELECT {', '.join('o.' + c.strip() for c in _COLUMNS.split(','))} FROM pgwarden_outbox o"
            f" WHERE o.next_attempt_at <= ? AND {_CLAIMABLE}{others} ORDER BY o.id LIMIT ?{skip}",
            (now, now, owner, now, owner, *skip_receivers, limit),
        ).fetchall()
        rows = _rows(found)
        _lease(tx, [r.id for r in rows], owner, now + lease)
        return rows

    return run


def op_claim_held(receiver: str, owner: str, lease: float, chunk: int) -> Callable[[Tx], int]:
    """Lease up to `chunk` more of `receiver`'s notices for its digest: those its rate limit held back, due or
    not, and any other due; how many were leased (fewer than `chunk`: that was all)."""

    def run(tx: Tx) -> int:
        now = tx.now()
        return tx.execute(
            "UPDATE pgwarden_outbox SET claimed_by = ?, lease_until = ? WHERE id IN (SELECT o.id FROM"
            " pgwarden_outbox o WHERE o.receiver = ? AND o.sent_at IS NULL AND (o.held = 1 OR o.next_attempt_at <= ?)"
            " AND (o.lease_until IS NULL OR o.lease_until < ?) LIMIT ?)",
            (owner, now + lease, receiver, now, now, chunk),
        ).rowcount

    return run


_MINE = "FROM pgwarden_outbox WHERE receiver = ? AND claimed_by = ? AND sent_at IS NULL"


def op_leased_summary(receiver: str, owner: str) -> Callable[[Tx], tuple[int, list[int]]]:
    """The decisions of the notices `owner` leased for `receiver`: how many, and the latest ten."""

    def run(tx: Tx) -> tuple[int, list[int]]:
        count = tx.execute(f"SELECT count(DISTINCT action_id) {_MINE}", (receiver, owner)).fetchone()[0]
        latest = tx.execute(
            f"SELECT DISTINCT action_id {_MINE} ORDER BY action_id DESC LIMIT 10", (receiver, owner)
        ).fetchall()
        return int(count), sorted(int(r[0]) for r in latest)

    return run


def op_leased_done(
    receiver: str, owner: str, outcome: str | None, chunk: int, delay: float = 0.0
) -> Callable[[Tx], int]:
    """Up to `chunk` of the notices `owner` leased for `receiver`: done with `outcome` (digested, gave_up), or,
    with None, given back to be tried again in `delay` seconds (a failed attempt). How many rows."""

    def run(tx: Tx) -> int:
        now = tx.now()
        some = f"id IN (SELECT id {_MINE} LIMIT ?)"
        if outcome is None:
            return tx.execute(
                "UPDATE pgwarden_outbox SET next_attempt_at = ?, attempts = attempts + 1, held = 1,"
                f" claimed_by = NULL, lease_until = NULL WHERE {some}",
                (now + max(0.0, delay), receiver, owner, chunk),
            ).rowcount
        return tx.execute(
            f"UPDATE pgwarden_outbox SET sent_at = ?, outcome = ?, lease_until = NULL WHERE {some}",
            (now, outcome, receiver, owner, chunk),
        ).rowcount

    return run


Ref = tuple[str | None, str | None]  # a message's (channel, ts)


def op_notices_of(
    action_ids: Sequence[int], receiver: str
) -> Callable[[Tx], dict[int, tuple[ActionRow, Ref | None]]]:
    """The decisions `action_ids` as they are now (those still journaled), each with the (channel, ts) of the
    message `receiver` was sent for it, if any: what a round sends to one receiver, read at once."""

    def run(tx: Tx) -> dict[int, tuple[ActionRow, Ref | None]]:
        if not action_ids:
            return {}
        marks = _marks(action_ids)
        rows = tx.execute(f"SELECT {COLUMNS} FROM pgwarden_actions WHERE id IN ({marks})", tuple(action_ids))
        found = {row.id: row for row in with_approvals(tx, [ActionRow.of(r) for r in rows.fetchall()])}
        refs = {
            int(r[0]): (r[1], r[2])
            for r in tx.execute(
                f"SELECT action_id, channel, ts FROM pgwarden_messages WHERE receiver = ? AND action_id IN ({marks})",
                (receiver, *action_ids),
            ).fetchall()
        }
        return {i: (row, refs.get(i)) for i, row in found.items()}

    return run


Message = tuple[int, str, str | None, str | None]  # action_id, receiver, channel, ts


def op_done(
    done: Sequence[tuple[Sequence[int], Message | None]], owner: str, outcome: str
) -> Callable[[Tx], int]:
    """Mark rows `owner` holds done with `outcome` (sent, digested, gave_up): per message, its rows and, when
    the receiver answered one, the reference of the message sent (kept to update or follow it up). How many
    rows were marked."""

    def run(tx: Tx) -> int:
        now = tx.now()
        marked = 0
        for ids, message in done:
            if message is not None:
                tx.execute(
                    "INSERT INTO pgwarden_messages (action_id, receiver, channel, ts, updated_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (action_id, receiver) DO UPDATE SET"
                    " channel = excluded.channel, ts = excluded.ts, updated_at = excluded.updated_at",
                    (*message, now),
                )
            if ids:
                marked += tx.execute(
                    "UPDATE pgwarden_outbox SET sent_at = ?, outcome = ?, lease_until = NULL"
                    f" WHERE id IN ({_marks(ids)}) AND claimed_by = ? AND sent_at IS NULL",
                    (now, outcome, *ids, owner),
                ).rowcount
        return marked

    return run


def op_later(
    ids: Sequence[int], owner: str, delay: float, *, failed: bool, held: bool
) -> Callable[[Tx], None]:
    """Give the rows back to be claimed again in `delay` seconds: after a failed attempt (`failed`: counted),
    or held back by the rate limit (`held`: said in the next digest)."""

    def run(tx: Tx) -> None:
        if not ids:
            return
        tx.execute(
            "UPDATE pgwarden_outbox SET next_attempt_at = ?, attempts = attempts + ?, held = ?,"
            f" claimed_by = NULL, lease_until = NULL WHERE id IN ({_marks(ids)}) AND claimed_by = ?"
            " AND sent_at IS NULL",
            (tx.now() + max(0.0, delay), 1 if failed else 0, 1 if held else 0, *ids, owner),
        )

    return run


def op_release(owner: str) -> Callable[[Tx], None]:
    """A replica stopping: its leases end now, another replica (or its successor) sends those rows."""

    def run(tx: Tx) -> None:
        tx.execute(
            "UPDATE pgwarden_outbox SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = ?"
            " AND sent_at IS NULL",
            (owner,),
        )

    return run


def op_queued(tx: Tx) -> dict[str, int]:
    """Rows not sent yet, by receiver."""
    found = tx.execute(
        "SELECT receiver, count(*) FROM pgwarden_outbox WHERE sent_at IS NULL GROUP BY receiver"
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in found}


def op_prune_outbox(retention: float) -> Callable[[Tx], int]:
    """Delete rows done more than `retention` seconds ago, and the message references of decisions gone."""

    def run(tx: Tx) -> int:
        cutoff = tx.now() - retention
        deleted = tx.execute("DELETE FROM pgwarden_outbox WHERE sent_at < ?", (cutoff,)).rowcount
        tx.execute(
            "DELETE FROM pgwarden_messages WHERE updated_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM pgwarden_actions a WHERE a.id = pgwarden_messages.action_id)",
            (cutoff,),
        )
        return deleted

    return run
