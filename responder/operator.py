"""An operator command's journal (`recover`, `migrate run`, `migrate backfill`): opened with the configuration's
store and credentials, kept alive in the replica table while the command runs (so no responder takes its row
for a dead process's), closed at the end; and the one way such a command ends on an unexpected error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TextIO

from responder.config import Config
from responder.journal import Journal, JournalUnavailable, open_store
from responder.notify.outbox import router
from responder.outcomes import Outcome


async def heartbeat(journal: Journal, stale_after: float) -> None:
    """Stay alive in the replica table, so no responder takes this command's row for a dead one's."""
    while True:
        with contextlib.suppress(JournalUnavailable):
            await journal.heartbeat(stale_after)
        await asyncio.sleep(max(0.2, stale_after / 3))


@contextlib.asynccontextmanager
async def operator_journal(config: Config, owner: str) -> AsyncIterator[Journal]:
    """The journal, heartbeated for as long as the block runs."""
    store = open_store(
        config.journal, timeout=config.schema.journal_timeout, credentials=config.journal_credentials
    )
    journal = Journal(store, owner, router(config.notify))  # its decisions are notified like any other
    await journal.start()
    beat = asyncio.create_task(heartbeat(journal, config.schema.replica_timeout))
    try:
        yield journal
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        await journal.close()


async def failed(journal: Journal, action_id: int | None, exc: Exception, out: TextIO, resume: str) -> int:
    """An unexpected error: said, journaled `failed` (when the row exists) with how to resume; exit code 1."""
    print(f"failed: {type(exc).__name__}: {exc}", file=out, flush=True)
    if action_id is not None:
        await journal.finish(action_id, Outcome.FAILED, None, f"{type(exc).__name__}: {exc}"[:500])
        print(f"fix the cause, then: {resume} --resume {action_id}", file=out)
    return 1
