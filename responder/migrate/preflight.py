"""`migrate run`'s pre-flight: what must be true of the target before a migration may start. Each refusal is a
sentence saying why; any refusal stops the run before anything ran (exit 2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from responder.journal import ActionFilter, ActionRow, Journal
from responder.migrate.settings import PreflightSettings
from responder.outcomes import State

ACTION = "migrate"

# Transactions in the target's database older than the limit (this session and the other guards' excluded).
OLD_TRANSACTIONS = """
SELECT pid, usename, application_name, extract(epoch FROM clock_timestamp() - xact_start)::float8
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
  AND clock_timestamp() - xact_start > make_interval(secs => %(limit)s)
ORDER BY xact_start
"""
# Sessions in the target's database whose transactions the guard cannot see (it lacks pg_read_all_stats).
HIDDEN = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND query = '<insufficient privilege>'
"""
# The primary's view of its standbys (RDS read replicas included); a standby itself has none.
REPLICA_LAG = """
SELECT coalesce(application_name, client_addr::text, pid::text),
       extract(epoch FROM greatest(write_lag, flush_lag, replay_lag))::float8
FROM pg_stat_replication
"""
# The target's migration lock: held by the guard's session for the whole run (released when it closes, a crash
# included), so two runs on one database never overlap, whatever journal each operator's responder.yml names.
LOCK = "SELECT pg_try_advisory_lock(hashtext('pgwarden-migrate'))"
LOCK_HOLDER = """
SELECT a.pid, coalesce(a.application_name, '') FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database
  WHERE datname = current_database()) AND l.objsubid = 1 AND l.objid = hashtext('pgwarden-migrate')::oid
"""

# Sessions of earlier migrations (`PGAPPNAME=pgwarden-migrate:<id>`, a smaller id) still active: the command of
# a run that was killed outright (SIGKILL) is not killed with it, and goes on migrating.
ORPHANS = """
SELECT pid, substring(application_name FROM 18)::bigint FROM pg_stat_activity
WHERE datname = current_database() AND application_name ~ '^pgwarden-migrate:[0-9]{1,18}$'
  AND substring(application_name FROM 18)::bigint < %(id)s
ORDER BY 2, 1
"""


@dataclass(frozen=True)
class Session:
    """A session on the target, as a refusal names it."""

    pid: int
    user: str | None
    application: str | None
    age: float

    def describe(self) -> str:
        return f"pid {self.pid} (user {self.user}, application {self.application!r}) open {self.age:.0f}s"


@dataclass(frozen=True)
class Replica:
    name: str
    lag: float | None  # None: the standby reports no lag (idle, or caught up)


async def old_transactions(conn: psycopg.AsyncConnection[Any], limit: float) -> list[Session]:
    cur = await conn.execute(OLD_TRANSACTIONS, {"limit": limit})
    return [Session(int(pid), user, app, float(age)) for pid, user, app, age in await cur.fetchall()]


async def hidden_sessions(conn: psycopg.AsyncConnection[Any]) -> int:
    row = await (await conn.execute(HIDDEN)).fetchone()
    return int(row[0]) if row else 0


async def replicas(conn: psycopg.AsyncConnection[Any]) -> list[Replica]:
    cur = await conn.execute(REPLICA_LAG)
    return [Replica(str(name), None if lag is None else float(lag)) for name, lag in await cur.fetchall()]


STANDBY = "the target is a standby (in recovery): a migration runs on its primary"


async def in_recovery(conn: psycopg.AsyncConnection[Any]) -> bool:
    row = await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone()
    return bool(row and row[0])


async def take_lock(conn: psycopg.AsyncConnection[Any]) -> str | None:
    """The target's migration lock, taken for the session's lifetime: None, or why it cannot be (who holds it)."""
    row = await (await conn.execute(LOCK)).fetchone()
    if row and row[0]:
        return None
    holders = await (await conn.execute(LOCK_HOLDER)).fetchall()
    held = ", ".join(f"pid {pid} (application {app!r})" for pid, app in holders) or "another session"
    return f"another migration is running on this database: it holds the migration lock ({held})"


def refusals(transactions: list[Session], standbys: list[Replica], settings: PreflightSettings) -> list[str]:
    """Why the target is not fit for a migration now (empty: it is)."""
    why = [
        f"a transaction older than max_transaction_age ({settings.max_transaction_age:g}s): {s.describe()}"
        for s in transactions
        if s.age > settings.max_transaction_age
    ]
    why += [
        f"replica {r.name} lags {r.lag:.1f}s, over max_replica_lag ({settings.max_replica_lag:g}s)"
        for r in standbys
        if r.lag is not None and r.lag > settings.max_replica_lag
    ]
    return why


async def other_migrations(journal: Journal, target: str, action_id: int) -> list[ActionRow]:
    """The migrations of `target` journaled running before this one (`action_id`): of two started at once,
    the later refuses and the earlier goes on."""
    running = await journal.find(ActionFilter(action=ACTION, state=State.RUNNING.value, limit=1000))
    return [r for r in running if r.labels.get("target") == target and r.id < action_id]


async def check(
    conn: psycopg.AsyncConnection[Any],
    journal: Journal,
    target: str,
    action_id: int,
    settings: PreflightSettings,
) -> list[str]:
    """Every pre-flight refusal for the migration journaled as `action_id` on `target`."""
    if await in_recovery(conn):
        return [STANDBY]
    why = [
        f"migration {row.id} of target {target} is running (since its journal row's start)"
        for row in await other_migrations(journal, target, action_id)
    ]
    cur = await conn.execute(ORPHANS, {"id": action_id})
    why += [
        f"a session of migration {run} is still active: pid {pid} (its command outlived that run)"
        for pid, run in await cur.fetchall()
    ]
    if held := await take_lock(conn):
        why.append(held)
    if hidden := await hidden_sessions(conn):
        why.append(
            f"the guard's role cannot see {hidden} session(s)' transactions: grant it pg_read_all_stats"
        )
    return why + refusals(
        await old_transactions(conn, settings.max_transaction_age), await replicas(conn), settings
    )
