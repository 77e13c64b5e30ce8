"""`migrate run`'s lock watchdog: while the migration's command runs, a session waiting behind one of the
migration's backends (those whose application_name is exactly `pgwarden-migrate:<id>` and that started after
the run did) longer than `watchdog.blocked_after` gets that backend cancelled, through the gate, with who was
blocked and for how long journaled in the effect. Nothing else is ever signalled: the cancel names the
backend's pid, application_name and start time, so a reused pid or a look-alike session is left alone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from responder.effects import EffectGate

log = logging.getLogger("responder.migrate.watchdog")

# For each of the migration's backends, the sessions (not ours) waiting for a lock behind it, and how long they
# have waited (pg_locks.waitstart, PostgreSQL 14+).
BLOCKED = """
SELECT m.pid, m.backend_start, w.pid, a.usename, a.application_name,
       extract(epoch FROM clock_timestamp() - coalesce(min(w.waitstart), clock_timestamp()))::float8
FROM pg_locks w
JOIN pg_stat_activity a ON a.pid = w.pid
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS b(pid)
JOIN pg_stat_activity m ON m.pid = b.pid
WHERE NOT w.granted
  AND m.application_name = %(app)s AND m.backend_start >= %(since)s
  AND a.application_name IS DISTINCT FROM %(app)s
GROUP BY m.pid, m.backend_start, w.pid, a.usename, a.application_name
"""
# The signal, to that backend only if it still is the migration's (same pid, name and start).
CANCEL = (
    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
    " WHERE pid = %(pid)s AND application_name = %(app)s AND backend_start = %(backend_start)s"
)


@dataclass(frozen=True)
class Waiter:
    pid: int
    user: str | None
    application: str | None
    waited: float

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "user": self.user,
            "application": self.application,
            "waited": round(self.waited, 3),
        }


@dataclass
class Watchdog:
    """One watch over the backends named `app`; `cancels` lists what it cancelled (journaled by the gate)."""

    gate: EffectGate
    conn: psycopg.AsyncConnection[Any]
    app: str
    since: datetime  # the run's start, on the server's clock
    blocked_after: float
    attempt: int = 0
    cancels: list[dict[str, Any]] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic
    _last: dict[tuple[int, datetime], float] = field(default_factory=dict)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def blocked(self) -> dict[tuple[int, datetime], list[Waiter]]:
        """Each of the migration's backends (pid, start) with the sessions waiting behind it."""
        cur = await self.conn.execute(BLOCKED, {"app": self.app, "since": self.since})
        found: dict[tuple[int, datetime], list[Waiter]] = {}
        for pid, start, wpid, user, application, waited in await cur.fetchall():
            found.setdefault((int(pid), start), []).append(
                Waiter(int(wpid), user, application, float(waited))
            )
        return found

    async def look(self) -> None:
        """One look: cancel each backend someone has waited behind longer than `blocked_after` (once per
        `blocked_after`, the time a cancel needs to land)."""
        now = self.clock()
        for (pid, start), waiters in (await self.blocked()).items():
            over = [w for w in waiters if w.waited > self.blocked_after]
            if not over or now - self._last.get((pid, start), -1e9) < self.blocked_after:
                continue
            self._last[(pid, start)] = now
            await self.cancel(pid, start, over)

    async def cancel(self, pid: int, start: datetime, waiters: list[Waiter]) -> None:
        blocked = [w.to_json() for w in waiters]
        params = {"pid": pid, "app": self.app, "backend_start": start}
        longest = max(w.waited for w in waiters)
        log.warning(
            "cancelling migration backend %s: %d session(s) blocked, longest %.1fs",
            pid,
            len(waiters),
            longest,
        )

        async def signal() -> bool:
            cur = await self.conn.execute(CANCEL, params)
            row = await cur.fetchone()
            return bool(row and row[0])

        shown = {**params, "attempt": self.attempt, "blocked": blocked}
        sent = await self.gate.postgres(CANCEL, shown, signal)
        self.cancels.append({"pid": pid, "attempt": self.attempt, "blocked": blocked, "sent": bool(sent)})

    async def watch(self, interval: float) -> None:
        """Look every `interval` seconds until `stop()`; a failed look is logged and the watch goes on. A look
        is never interrupted (the connection is used again after the watch)."""
        while not self._stopped.is_set():
            try:
                await self.look()
            except psycopg.Error as exc:
                log.warning("watchdog look failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), interval)

    def stop(self) -> None:
        self._stopped.set()
