"""One run of a backfill (`responder.migrate.backfill`): its batches, the pauses between them, its progress.

Before each batch it waits while a replica lags more than `backfill.max_replica_lag`; while a batch runs a second
session watches for sessions waiting behind the batch's locks: one waiting longer than `watchdog.blocked_after`
gets the batch cancelled (and tried again), and a batch that had some waiting is followed by a pause of
`watchdog.blocked_after`; between batches, `backfill.pause`. A batch whose lock or statement timeout fires
(it waited on the application's locks) is rolled back and tried again after `retries.backoff`, up to
`retries.attempts` times. In enforce mode a batch runs as `responder.migrate.batches` says (exactly once, with
its progress); in dry-run its UPDATE is journaled through the gate, not run, and its rows are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import psycopg
from psycopg.errors import LockNotAvailable, QueryCanceled
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from pgwarden import postgres
from responder.core import PostgresTarget
from responder.effects import EffectGate
from responder.migrate import batches, preflight
from responder.migrate.batches import Batch, Job
from responder.migrate.settings import MigrationsSchema
from responder.migrate.sqltext import Assignment, Relation

LAG = "SELECT coalesce(max(extract(epoch FROM replay_lag)), 0)::float FROM pg_stat_replication"
# The sessions waiting behind a backend's locks, and the longest wait (since their statement started).
BLOCKED = """
SELECT count(*), coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0)::float
FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))
"""
KEEP_EFFECTS = 100  # the journal row keeps the gate's entries of the last 100 batches (one entry a batch)
WATCH_EVERY = 0.1  # seconds between two looks at the sessions blocked behind a running batch


class Stop(Exception):
    """The backfill stops: refused (exit 2) or failed (exit 1)."""

    def __init__(self, reason: str, refused: bool = False) -> None:
        super().__init__(reason)
        self.refused = refused


@dataclass
class Walk:
    """One run of a backfill: its batches, their pauses, its progress."""

    action_id: int
    target: PostgresTarget
    settings: MigrationsSchema
    gate: EffectGate
    out: TextIO
    blocked_seen: int = 0
    started: float = field(default_factory=time.monotonic)

    async def connect(self) -> psycopg.AsyncConnection[Any]:
        options = postgres.SessionOptions(
            f"pgwarden-backfill:{self.action_id}",
            lock_timeout=self.settings.lock_timeout,
            statement_timeout=self.settings.statement_timeout,
            prepare_threshold=None,
        )
        return await postgres.connect(self.target.conninfo, options, self.target.credentials)

    async def run(self) -> dict[str, Any]:
        """The backfill the gate's plan journals, new or resumed, to its end."""
        plan = self.gate.plan
        relation = Relation(str(plan["schema"]), str(plan["table"]))
        assignment = Assignment(str(plan["column"]), str(plan["expression"]))
        condition = plan.get("where")
        key = str(plan["progress_key"])
        async with await self.connect() as conn, await self.connect() as monitor:
            if await preflight.in_recovery(conn):
                raise Stop(preflight.STANDBY.replace("a migration", "a backfill"), refused=True)
            table = await batches.find_table(conn, relation)
            batches.update_statement(table, assignment, condition, first=True)  # refuses the key as column
            if "total" not in plan:  # a new backfill (or one that crashed before it counted)
                cur = await conn.execute(batches.total_statement(table, condition), {})
                plan["total"] = int((await cur.fetchone() or (0,))[0])
                plan["statement"] = batches.update_statement(table, assignment, condition, False).as_string(
                    conn
                )
            await self.gate.save_plan(plan)
            # No progress row: no batch ever committed (each one locks and advances it), so starting is safe.
            if not self.gate.dry_run and await batches.read_progress(conn, key) is None:
                await batches.create_progress(conn, key, str(relation), plan["statement"])
            self.say(
                f"backfill {self.action_id}: {relation} ({plan.get('total')} rows to update), key {table.key}"
            )
            done = await self._walk(conn, monitor, Job(table, assignment, condition, key))
        return {"rows": done["rows_done"], "batches": done["batches"], "total": plan.get("total")}

    async def _walk(
        self, conn: psycopg.AsyncConnection[Any], monitor: psycopg.AsyncConnection[Any], job: Job
    ) -> dict[str, Any]:
        plan, size = self.gate.plan, int(self.gate.plan["batch_size"])
        if self.gate.dry_run:
            progress = batches.Progress(None, 0, 0, False)
        else:
            found = await batches.read_progress(conn, job.key)
            if found is None:
                raise Stop(f"backfill {self.action_id}: its progress row is gone from the target")
            progress = found
        self.say_progress(progress, plan, 0)
        ran_rows = 0
        while not progress.finished:
            await self._wait_for_replicas(monitor)
            if self.gate.dry_run:
                batch = await self._count(conn, job, progress.last_key, size)
            else:
                batch = await self._retrying(lambda: self._batch(conn, monitor, job, size))
            finished = batch.upto is None
            progress = batches.Progress(
                batch.upto or progress.last_key,
                progress.rows_done + batch.rows,
                progress.batches + (0 if finished else 1),
                finished,
            )
            ran_rows += batch.rows
            plan["progress"] = self.say_progress(progress, plan, ran_rows)
            # The plan is rewritten after each batch: keep the journal row's size bounded on a long backfill.
            del self.gate.effects[:-KEEP_EFFECTS]
            await self.gate.save_plan(plan)
            if not finished:
                await self._pause()
        return {"rows_done": progress.rows_done, "batches": progress.batches}

    async def _retrying(self, batch: Callable[[], Awaitable[Batch]]) -> Batch:
        """The batch, tried again after its lock or statement timeout (rolled back: nothing of it stayed)."""
        retries = self.settings.retries
        attempts = AsyncRetrying(
            retry=retry_if_exception_type((LockNotAvailable, QueryCanceled)),
            stop=stop_after_attempt(retries.attempts),
            wait=wait_exponential(multiplier=retries.backoff, max=retries.max_backoff),
            before_sleep=lambda state: self.say(
                f"batch rolled back ({state.outcome.exception() if state.outcome else ''}): trying again"
            ),
            reraise=True,
        )
        try:
            async for attempt in attempts:
                with attempt:
                    return await batch()
        except (LockNotAvailable, QueryCanceled) as exc:
            raise Stop(f"a batch failed {retries.attempts} times: {exc}") from exc
        raise AssertionError("unreachable: tenacity returns or raises")

    async def _batch(
        self, conn: psycopg.AsyncConnection[Any], monitor: psycopg.AsyncConnection[Any], job: Job, size: int
    ) -> Batch:
        """One batch in one transaction with its progress; the previous committed batch is read locked."""
        async with conn.transaction():
            progress = await batches.read_progress(conn, job.key, lock=True)
            if progress is None:
                raise Stop(f"backfill {self.action_id}: its progress row is gone from the target")
            if progress.finished:
                return Batch(progress.last_key, None, 0)
            upto = await batches.next_upto(conn, job.table, progress.last_key, size)
            if upto is None:
                batch = Batch(progress.last_key, None, 0)
            else:
                first = progress.last_key is None
                statement = batches.update_statement(job.table, job.assignment, job.condition, first)
                params = {"after": progress.last_key, "upto": upto}

                async def update() -> int:
                    cur = await conn.execute(statement, params)
                    return cur.rowcount

                watch = asyncio.create_task(self._watch(monitor, conn))
                try:
                    rows = await self.gate.postgres(statement.as_string(conn), params, update)
                finally:
                    watch.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watch
                batch = Batch(progress.last_key, upto, int(rows or 0))
            await batches.commit_progress(conn, job.key, batch)
        return batch

    async def _count(
        self, conn: psycopg.AsyncConnection[Any], job: Job, after: str | None, size: int
    ) -> Batch:
        """A dry run's batch: the UPDATE journaled through the gate (not run), its rows counted."""
        upto = await batches.next_upto(conn, job.table, after, size)
        if upto is None:
            return Batch(after, None, 0)
        params = {"after": after, "upto": upto}
        cur = await conn.execute(batches.count_statement(job.table, job.condition, after is None), params)
        rows = int((await cur.fetchone() or (0,))[0])
        text = str(self.gate.plan["statement"])

        async def never() -> None:  # pragma: no cover - the gate does not run it in dry-run
            raise AssertionError("a dry run changes nothing")

        await self.gate.postgres(text, {**params, "rows": rows}, never)
        return Batch(after, upto, rows)

    async def _watch(self, monitor: psycopg.AsyncConnection[Any], conn: psycopg.AsyncConnection[Any]) -> None:
        """While a batch runs: the sessions waiting behind its locks (the most seen is kept, for the pause
        after it); one waiting longer than `watchdog.blocked_after` gets the batch cancelled (our own session's
        statement, by the protocol's cancel request: rolled back, then tried again)."""
        limit = self.settings.watchdog.blocked_after
        while True:
            cur = await monitor.execute(BLOCKED, (conn.info.backend_pid,))
            count, waited = await cur.fetchone() or (0, 0.0)
            self.blocked_seen = max(self.blocked_seen, int(count))
            if float(waited) > limit:
                self.say(f"{count} session(s) waited {float(waited):.1f}s behind the batch: cancelling it")
                await conn.cancel_safe()
                return
            await asyncio.sleep(WATCH_EVERY)

    async def _wait_for_replicas(self, monitor: psycopg.AsyncConnection[Any]) -> None:
        limit = self.settings.backfill.max_replica_lag
        while True:
            cur = await monitor.execute(LAG)
            lag = float((await cur.fetchone() or (0.0,))[0] or 0.0)
            if lag <= limit:
                return
            self.say(f"paused: a replica lags {lag:.1f}s (over {limit:g}s)")
            await asyncio.sleep(min(limit, 5.0))

    async def _pause(self) -> None:
        if self.blocked_seen:
            wait = self.settings.watchdog.blocked_after
            self.say(f"paused {wait:g}s: {self.blocked_seen} session(s) waited behind the last batch")
            self.blocked_seen = 0
            await asyncio.sleep(wait)
        await asyncio.sleep(self.settings.backfill.pause)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def say_progress(self, progress: batches.Progress, plan: dict[str, Any], ran_rows: int) -> dict[str, Any]:
        """Print and return the progress: rows done/total, this run's rate, the ETA."""
        total = int(plan.get("total") or 0)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = ran_rows / elapsed
        left = max(total - progress.rows_done, 0)
        eta = left / rate if rate > 0 else None
        shown = {
            "rows_done": progress.rows_done,
            "total": total,
            "batches": progress.batches,
            "last_key": progress.last_key,
            "rows_per_second": round(rate, 1),
            "eta_seconds": None if eta is None or progress.finished else round(eta, 1),
        }
        pct = f" ({100 * progress.rows_done / total:.1f}%)" if total else ""
        eta_text = f", ETA {eta:.0f}s" if eta is not None and not progress.finished else ""
        self.say(
            f"batch {progress.batches}: {progress.rows_done}/{total} rows{pct}, {rate:.0f} rows/s{eta_text}"
        )
        return shown
