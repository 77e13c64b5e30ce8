"""The journal: every decision, durable, behind one interface for SQLite and PostgreSQL.

`Journal` is the only owner of its tables: nothing else writes their SQL. What it reads comes back as frozen,
typed rows (`rows.ActionRow`); what it records are `responder.decision.Decision`s. Its schema is versioned
(`migrations`), brought up to date by every store as it opens.

The operations (`ops`: one decision's writes, `reads`, `upkeep`: heartbeats, expiry, retention) are plain
synchronous functions of a `Tx` (one transaction), shared by both stores (`stores`):
- SQLite (`sqlite:///path`, the default): WAL, `synchronous=FULL`; a single writer task puts the operations that
  arrive while a COMMIT is being fsynced into the next transaction (group commit).
- PostgreSQL (`postgresql://...`, for several replicas): one transaction per operation on a small pool.

Exactly once: a decision that may act carries `dedup_key = playbook|fingerprint|startsAt`, a UNIQUE column.
`INSERT ... ON CONFLICT (dedup_key) DO NOTHING` lets exactly one replica win; the others journal a duplicate.
Cooldown and daily cap are checked in the same transaction that marks an action `running`, under a lock per
playbook (PostgreSQL advisory lock; SQLite's write lock), so they hold across replicas too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from pgwarden.credentials import Credentials
from responder.decision import Decision
from responder.journal.migrations import JournalTooNew
from responder.journal.once import op_take_slack_request
from responder.journal.ops import op_claim, op_decide, op_finish, op_record, op_set_plan
from responder.journal.outbox import (
    Message,
    OutboxRow,
    Router,
    op_claim_due,
    op_claim_held,
    op_done,
    op_later,
    op_leased_done,
    op_leased_summary,
    op_notices_of,
    op_prune_outbox,
    op_queued,
    op_release,
)
from responder.journal.reads import (
    op_count_pending,
    op_count_rows,
    op_ended,
    op_facets,
    op_find,
    op_get,
    op_history,
    op_is_decided,
    op_last_decision,
    op_recent,
)
from responder.journal.rows import ActionFilter, ActionRow, Approval, Claim
from responder.journal.sessions import (
    NONCE_KEEP,
    SessionRow,
    op_link_spent,
    op_purge_console,
    op_session_create,
    op_session_drop,
    op_session_get,
)
from responder.journal.stores import PostgresStore, SqliteStore, Store
from responder.journal.tx import JournalUnavailable, Tx
from responder.journal.upkeep import (
    PRUNE_BATCH,
    op_expire,
    op_heartbeat_and_recover,
    op_orphaned,
    op_prune,
    op_take_over,
)
from responder.outcomes import Answer, Outcome, State

HEAVY_RECORD = 64
OUTBOX_CHUNK = 500  # notices marked per transaction when a digest says many

__all__ = [
    "ActionFilter",
    "ActionRow",
    "Approval",
    "Claim",
    "Journal",
    "JournalTooNew",
    "JournalUnavailable",
    "OutboxRow",
    "PostgresStore",
    "SessionRow",
    "SqliteStore",
    "Store",
    "Tx",
    "open_store",
]


class Journal:
    """What the rest of the responder sees: async methods over whichever store is configured.

    With `route`, every change of a decision that a `notify:` route (or an earlier message) sends somewhere is
    queued in the outbox in the change's own transaction, and `noted` is set for the sender."""

    def __init__(self, store: Store, owner: str, route: Router | None = None) -> None:
        self.store = store
        self.owner = owner
        self.route = route
        self.noted = asyncio.Event()

    def _changed(self) -> None:
        if self.route is not None:
            self.noted.set()

    @property
    def single_process(self) -> bool:
        return not self.store.postgres

    def describe(self) -> str:
        return self.store.describe()

    async def start(self) -> None:
        await self.store.start()

    async def close(self) -> None:
        await self.store.close()

    async def ping(self) -> None:
        await self.store.ping()

    async def record(self, decisions: Sequence[Decision]) -> list[Decision]:
        """Journal decisions: each comes back with its id (a duplicate as done/duplicate, see `op_record`)."""
        heavy = len(decisions) > HEAVY_RECORD  # a large payload's inserts: never on the event loop
        recorded = await self.store.run(op_record(decisions, self.owner, self.route), heavy=heavy)
        if any(d.state in (State.PENDING, State.DONE) for d in recorded):
            self._changed()
        return recorded

    async def claim(self, claim: Claim) -> ActionRow | None:
        """queued -> running unless a guard says no: the row as the claim left it (see `op_claim`)."""
        row = await self.store.run(op_claim(claim, self.owner, self.route))
        if row is not None and row.state is State.DONE:
            self._changed()
        return row

    async def finish(
        self,
        action_id: int,
        outcome: Outcome,
        result: Any = None,
        error: str | None = None,
        release_key: bool = False,
    ) -> None:
        await self.store.run(op_finish(action_id, outcome, result, error, release_key, self.route))
        self._changed()

    async def set_plan(self, action_id: int, plan: Any) -> None:
        await self.store.run(op_set_plan(action_id, plan))

    async def decide(
        self,
        action_id: int,
        approve: bool,
        who: str,
        approval_timeout: float,
        needed: Mapping[str, int] | None = None,
        nonce: str | None = None,
        approvers: Collection[str] | None = None,
    ) -> Answer:
        """Approve or reject a pending decision (see `op_decide`: `needed` approvals by playbook, a link's
        single-use `nonce`, the configured `approvers` whose approvals count)."""
        answer, _ = await self.decide_and_get(
            action_id, approve, who, approval_timeout, needed, nonce, approvers
        )
        return answer

    async def decide_and_get(
        self,
        action_id: int,
        approve: bool,
        who: str,
        approval_timeout: float,
        needed: Mapping[str, int] | None = None,
        nonce: str | None = None,
        approvers: Collection[str] | None = None,
    ) -> tuple[Answer, ActionRow | None]:
        """`decide`, and the row as it left it, read in the same transaction: a journal lost right after an
        approval commits cannot leave that approval queued with nobody to run it."""
        decide = op_decide(
            action_id, approve, who, self.owner, approval_timeout, needed, nonce, self.route, approvers
        )
        read = op_get(action_id)
        answer, row = await self.store.run(lambda tx: (decide(tx), read(tx)))
        self._changed()
        return answer, row

    async def expire_pending(self, approval_timeout: float) -> list[ActionRow]:
        expired = await self.store.run(op_expire(approval_timeout, self.route))
        if expired:
            self._changed()
        return expired

    async def heartbeat(self, stale_after: float, first: bool = False) -> list[ActionRow]:
        """At start-up with SQLite every other owner is dead (one process per file)."""
        recover_all = first and self.single_process
        rows = await self.store.run(
            op_heartbeat_and_recover(self.owner, stale_after, recover_all, self.route)
        )
        if rows:
            self._changed()
        return rows

    async def orphaned(self, older_than: float) -> list[ActionRow]:
        """This replica's queued decisions untouched for `older_than` seconds (see `Dispatcher.revive`)."""
        return await self.store.run(op_orphaned(self.owner, older_than))

    async def history(self, action: str, target_key: str, outcome: Outcome, since: float) -> list[float]:
        """`since` and the times returned are on this process's clock; the comparison is on the journal's."""
        local_now = time.time()
        journal_now, ended = await self.store.run(op_history(action, target_key, outcome, local_now - since))
        return [t - journal_now + local_now for t in ended]

    async def prune(self, retention: float, batches: int = 10) -> tuple[int, bool]:
        """Delete decisions that ended longer than `retention` ago, a small batch per transaction, at most
        `batches` of them: how many were deleted, and whether more are left. Expired console sessions and
        the nonces of expired approval links go first."""
        await self.store.run(op_purge_console(NONCE_KEEP))
        await self.store.run(op_prune_outbox(retention))
        deleted = 0
        for _ in range(batches):
            batch = await self.store.run(op_prune(retention))
            deleted += batch
            if batch < PRUNE_BATCH:
                return deleted, False
        return deleted, True

    async def rows(self) -> int:
        return await self.store.run(op_count_rows)

    async def pending(self) -> int:
        """Actions waiting for an approval, whichever replica journaled them."""
        return await self.store.run(op_count_pending)

    async def take_over(
        self,
        action_id: int,
        action: str,
        stale_after: float,
        refusal: Callable[[ActionRow, bool], str | None],
    ) -> tuple[ActionRow | None, str | None]:
        """Own decision `action_id` (one of `action`) again, to resume it, unless `refusal(row,
        running_elsewhere)` says why not: the row as it was (None: there is none) and the refusal, if any."""
        return await self.store.run(op_take_over(action_id, action, self.owner, stale_after, refusal))

    # ---- the notification outbox (responder.journal.outbox) ------------------------------------------------

    async def claim_notices(
        self, lease: float, limit: int, skip_receivers: Sequence[str] = ()
    ) -> list[OutboxRow]:
        """Lease up to `limit` due notices to this replica for `lease` seconds (none of `skip_receivers`)."""
        return await self.store.run(op_claim_due(self.owner, lease, limit, skip_receivers))

    async def claim_digest(self, receiver: str, lease: float) -> tuple[int, list[int]]:
        """Lease every notice `receiver`'s rate limit held back, and any other due, in transactions of a few
        hundred rows: how many decisions they are, and the latest ten."""
        while (
            await self.store.run(op_claim_held(receiver, self.owner, lease, OUTBOX_CHUNK), heavy=True)
            == OUTBOX_CHUNK
        ):
            pass
        return await self.store.run(op_leased_summary(receiver, self.owner))

    async def digest_done(self, receiver: str, outcome: str | None, delay: float = 0.0) -> None:
        """The digest's notices (`claim_digest`) done with `outcome`, or (None) due again in `delay` seconds."""
        op = op_leased_done(receiver, self.owner, outcome, OUTBOX_CHUNK, delay)
        while await self.store.run(op, heavy=True) == OUTBOX_CHUNK:
            pass

    async def notices_of(
        self, action_ids: Sequence[int], receiver: str
    ) -> dict[int, tuple[ActionRow, tuple[str | None, str | None] | None]]:
        """The decisions as they are now, each with the reference of the message `receiver` was sent for it."""
        return await self.store.run(op_notices_of(action_ids, receiver))

    async def notices_done(self, done: Sequence[tuple[Sequence[int], Message | None]], outcome: str) -> int:
        """Mark notices sent, digested or given up: per message its rows, and the reference of the message
        sent (if the receiver gave one)."""
        return await self.store.run(op_done(done, self.owner, outcome))

    async def notices_later(self, ids: Sequence[int], delay: float, *, failed: bool, held: bool) -> None:
        """Give leased notices back, due again in `delay` seconds."""
        await self.store.run(op_later(ids, self.owner, delay, failed=failed, held=held))

    async def release_notices(self) -> None:
        await self.store.run(op_release(self.owner))

    async def queued_notices(self) -> dict[str, int]:
        """Notices not sent yet, by receiver (all replicas)."""
        return await self.store.run(op_queued)

    # ---- the console's sessions (responder.ui.sessions) -------------------------------------------------------

    async def create_session(self, id_hash: str, principal: str, token_fingerprint: str, ttl: float) -> float:
        """Journal a session (by the hash of its id); when it expires."""
        return await self.store.run(op_session_create(id_hash, principal, token_fingerprint, ttl))

    async def session(self, id_hash: str) -> SessionRow | None:
        return await self.store.run(op_session_get(id_hash))

    async def drop_session(self, id_hash: str) -> None:
        await self.store.run(op_session_drop(id_hash))

    async def link_spent(self, nonce: str) -> bool:
        """Whether an approval link with this nonce has decided something (see `op_decide`)."""
        return await self.store.run(op_link_spent(nonce))

    # ---- Slack's requests (responder.approvals.slack) ---------------------------------------------------------

    async def take_slack_request(self, signature: str, keep_for: float) -> bool:
        """Whether this Slack request (its signature) is taken here first: False for a replay, whichever
        replica took it (see `op_take_slack_request`)."""
        return await self.store.run(op_take_slack_request(signature, keep_for))

    # ---- reads ----------------------------------------------------------------------------------------------

    async def get(self, action_id: int) -> ActionRow | None:
        return await self.store.run(op_get(action_id))

    async def recent(self, limit: int) -> list[ActionRow]:
        """The latest `limit` decisions, newest first."""
        return await self.store.run(op_recent(limit))

    async def find(self, search: ActionFilter) -> list[ActionRow]:
        """The decisions matching `search`, newest first."""
        return await self.store.run(op_find(search))

    async def journaled(self, action: str, since: float, until: float) -> list[ActionRow]:
        """The decisions of `action` journaled in [since, until), newest first (at most 1000): what an action
        and a report read of the journal."""
        return await self.find(ActionFilter(action=action, since=since, until=until, limit=1000))

    async def facets(self) -> dict[str, list[str]]:
        """The distinct playbooks, outcomes and targets journaled, for the console's filters."""
        return await self.store.run(op_facets)

    async def ended(self, action: str, outcomes: Sequence[Outcome], since: float) -> list[ActionRow]:
        """The decisions of `action` that ended with one of `outcomes` at or after `since`, oldest first."""
        return await self.store.run(op_ended(action, outcomes, since))

    async def is_decided(self, dedup_key: str) -> bool:
        """Whether some decision holds `dedup_key` (a schedule's tick, say)."""
        return await self.store.run(op_is_decided(dedup_key))

    async def last_decision(self, playbook: str) -> ActionRow | None:
        """The playbook's latest decision that was not a duplicate."""
        return await self.store.run(op_last_decision(playbook))


def open_store(
    url: str, pool_size: int = 8, timeout: float = 3.0, credentials: Credentials | None = None
) -> Store:
    """`sqlite:///abs/path`, `sqlite:relative/path` or a PostgreSQL URL/conninfo (`credentials`: its
    password from Secrets Manager, fresh for each connection)."""
    if url.startswith("sqlite:"):
        rest = url[len("sqlite:") :]
        if rest.startswith("//"):
            rest = rest[2:]
        return SqliteStore(Path(rest))
    return PostgresStore(url, pool_size=pool_size, timeout=timeout, credentials=credentials)
