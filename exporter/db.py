"""Connections to one server: a budget of connections shared by its databases, opened lazily on first use.

The pool is ours rather than psycopg_pool's: a scrape wants a connection now or the reason it cannot have one
(refused, bad password, timed out) at once, not a background reconnect loop that retries until a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import AsyncRowFactory, RowMaker

from exporter.sizes import RelationSizes, Sizes
from pgwarden import postgres
from pgwarden.credentials import Credentials

if TYPE_CHECKING:
    from psycopg.cursor_async import AsyncCursor

    from exporter.target import Target

log = logging.getLogger("pgwarden.db")

APPLICATION_NAME = "pgwarden-exporter"
# Size functions lock each relation they measure; never queue behind a migration's exclusive lock.
LOCK_TIMEOUT = 1.0
# An idle connection is checked with an empty query before reuse when it has rested longer than this; the
# scrape's own first connection is always checked, and when that finds the server restarted every idle
# connection of the target is dropped. One that rested longer than MAX_IDLE is closed instead.
CHECK_AFTER = 60.0
MAX_IDLE = 300.0


RowT = TypeVar("RowT", bound=tuple[Any, ...])


class DatabaseUnavailable(Exception):
    """No connection to a database could be had; the message says why (never the DSN's secrets)."""


@dataclass(frozen=True, slots=True)
class ServerInfo:
    version_num: int  # e.g. 150004
    datname: str  # the database named in the DSN


class Session:
    """One connection to one database, lent to a collector for one fetch.

    `refreshing` names the collectors refreshed on this database in the same visit, `shared` holds what one
    of them read for another (the tables collector reads pg_statio's columns when statio_tables is due too),
    `probes` the visit's collectors' `Collector.probe` expressions, which the visit's first statement reads.
    """

    def __init__(
        self,
        conn: AsyncConnection[Any],
        datname: str,
        server: ServerInfo,
        sizes: RelationSizes | None = None,
        refreshing: frozenset[str] = frozenset(),
    ) -> None:
        self.conn = conn
        self.datname = datname
        self.server = server
        self.sizes = sizes or RelationSizes()
        self.refreshing = refreshing
        self.shared: dict[str, Any] = {}
        self.probes: dict[str, str] = {}

    async def rows(self, sql: str, params: Any = None, binary: bool = True) -> list[tuple[Any, ...]]:
        """Rows of one statement (its own transaction: autocommit releases its locks at once)."""
        async with self.conn.cursor(binary=binary) as cur:
            await cur.execute(sql.encode(), params)
            return await cur.fetchall()

    async def typed(self, row: type[RowT], sql: str, params: Any = None, binary: bool = True) -> list[RowT]:
        """Rows of one statement as `row`, a NamedTuple whose fields are the statement's column names."""
        async with self.conn.cursor(binary=binary, row_factory=named_row(row)) as cur:
            await cur.execute(sql.encode(), params)
            return await cur.fetchall()

    async def named_rows(self, sql: str, params: Any = None) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        """The column names and the rows of one statement."""
        async with self.conn.cursor() as cur:
            await cur.execute(sql.encode(), params)
            names = tuple(c.name for c in cur.description or ())
            return names, await cur.fetchall()

    async def table_sizes(self, oids: Sequence[int]) -> Sizes:
        """pg_table_size of each table, shared with the other collectors (see exporter.sizes)."""
        return await self.sizes.measure(self.datname, self.rows, oids, "table")

    async def index_sizes(self, oids: Sequence[int]) -> Sizes:
        """pg_relation_size of each index, shared with the other collectors (see exporter.sizes)."""
        return await self.sizes.measure(self.datname, self.rows, oids, "index")


class RowShapeError(Exception):
    """A statement's columns are not the fields of the row type it is read into (a bug in a collector)."""


def check_row_names(row: str, names: Sequence[str], fields: Sequence[str]) -> None:
    if tuple(names) != tuple(fields):
        raise RowShapeError(f"{row} has fields {', '.join(fields)}; the statement returns {', '.join(names)}")


def named_row(row: type[RowT]) -> AsyncRowFactory[RowT]:
    """A psycopg row factory building `row` (a NamedTuple) from each row, once its columns are checked."""
    fields: tuple[str, ...] = getattr(row, "_fields")  # noqa: B009 (a NamedTuple: the tuple bound lacks it)
    make: RowMaker[RowT] = getattr(row, "_make")  # noqa: B009 (tuple.__new__ and a length check, no per-field call)

    def factory(cursor: AsyncCursor[Any]) -> RowMaker[RowT]:
        if cursor.description is not None:  # None before execute: nothing to check yet
            check_row_names(row.__name__, [c.name for c in cursor.description], fields)
        return make

    return factory


class _Pool:
    """The connections to one database: the idle ones kept for reuse, and how many are lent out."""

    def __init__(
        self,
        dsn: str,
        options: postgres.SessionOptions,
        size: int,
        label: str,
        main: bool,
        credentials: Credentials | None = None,
    ) -> None:
        self.dsn = dsn
        self.options = options
        self.credentials = credentials
        self.size = size
        self.label = label
        self.main = main  # the DSN's database: one idle connection of it may stay open at rest
        self.idle: list[tuple[AsyncConnection[Any], float]] = []  # oldest first
        self.in_use = 0

    async def connect(self) -> AsyncConnection[Any]:
        timeout = self.options.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                return await postgres.connect(self.dsn, self.options, self.credentials)
        except TimeoutError:
            raise DatabaseUnavailable(f"{self.label}: no answer within {timeout:g}s") from None
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"{self.label}: {_reason(exc)}") from None


def _reason(exc: psycopg.Error) -> str:
    """The server's or libpq's reason, first line only: it names host and user, never the password."""
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    # libpq prefixes "connection failed: connection to server at ... failed: " before the reason
    reason = lines[0] if lines else type(exc).__name__
    return reason.rsplit("failed: ", 1)[-1] if "failed: " in reason else reason


@dataclass(frozen=True, slots=True)
class ConnectionCounts:
    open: int  # idle and in use
    in_use: int
    peak: int  # most open at once since the last time the counts were taken
    budget: int


class ServerConnections:
    """Connections to the databases of one target, within its budget of `max_connections` in all.

    A database gets at most `pool_size` of them; when the budget is spent, a new database's connection
    replaces the longest-idle one of another database, or waits for one to be given back. Idle connections
    close after `idle_timeout`, except one to the DSN's database: at rest a target holds one connection.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.budget = target.config.max_connections
        self.idle_timeout = target.config.idle_timeout
        self._pools: dict[str, _Pool] = {}
        self._timeouts: weakref.WeakKeyDictionary[AsyncConnection[Any], int] = weakref.WeakKeyDictionary()
        self.main_dbname = str(conninfo_to_dict(target.conninfo).get("dbname") or "")
        self._open = 0
        self._in_use = 0
        self._peak = 0
        self._changed = asyncio.Condition()
        self._reap_timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def _pool(self, dbname: str | None) -> _Pool:
        key = "" if dbname is None or dbname == self.main_dbname else dbname
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = self._new_pool(key or None)
        return pool

    def _new_pool(self, dbname: str | None) -> _Pool:
        config = self.target.config
        label = self.target.display if dbname is None else f"database {dbname}"
        options = postgres.SessionOptions(
            APPLICATION_NAME,
            config.connect_timeout,
            dbname=dbname,
            lock_timeout=LOCK_TIMEOUT,
            prepare_threshold=None,
        )
        return _Pool(
            self.target.conninfo,
            options,
            config.pool_size,
            label,
            main=dbname is None,
            credentials=self.target.credentials,
        )

    def counts(self) -> ConnectionCounts:
        """Connections open and in use now, and the peak since the previous call."""
        counts = ConnectionCounts(self._open, self._in_use, self._peak, self.budget)
        self._peak = self._open
        return counts

    @asynccontextmanager
    async def connection(
        self, dbname: str | None = None, statement_timeout: float | None = None, check: bool = False
    ) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection to `dbname` (None: the DSN's database), with statement_timeout set; `check=True`
        proves a reused one alive with a round trip first."""
        pool = self._pool(dbname)
        conn = await self._acquire(pool, check)
        try:
            if statement_timeout is not None:
                await self.set_statement_timeout(conn, statement_timeout)
            yield conn
        finally:
            await self._release(pool, conn)

    async def set_statement_timeout(self, conn: AsyncConnection[Any], seconds: float) -> None:
        """SET statement_timeout on one of these connections, unless it has that value already."""
        ms = postgres.milliseconds(seconds)
        if self._timeouts.get(conn) != ms:
            await conn.execute(f"SET statement_timeout = {ms}".encode())
            self._timeouts[conn] = ms

    async def _acquire(self, pool: _Pool, check: bool) -> AsyncConnection[Any]:
        reused: tuple[AsyncConnection[Any], float] | None = None
        async with self._changed:
            while True:
                if pool.in_use < pool.size:
                    if pool.idle:
                        reused = pool.idle.pop()
                        break
                    if self._open < self.budget:
                        self._open += 1
                        self._peak = max(self._peak, self._open)
                        break
                    # Make room by closing another database's idle connection only for a database that has
                    # none: one that has a connection lent waits for it rather than churn the budget.
                    if pool.in_use == 0 and self._evict_idle():
                        continue
                await self._changed.wait()
            pool.in_use += 1
            self._in_use += 1
        try:
            if reused is not None:
                conn = await self._revive(pool, *reused, check=check)
                if conn is not None:
                    return conn
            return await pool.connect()
        except BaseException:
            await self._give_back(pool, None)
            raise

    async def _revive(
        self, pool: _Pool, conn: AsyncConnection[Any], since: float, check: bool
    ) -> AsyncConnection[Any] | None:
        """The idle connection if still good; None (it is closed) when a new one must be opened instead."""
        rested = time.monotonic() - since
        if conn.closed or rested > MAX_IDLE:
            await conn.close()
            return None
        if check or rested > CHECK_AFTER:
            try:
                await conn.execute(b"")
            except psycopg.Error:
                # The server went away (restart, failover): its other idle connections are gone too.
                await conn.close()
                await self.drop_idle()
                return None
        return conn

    def _evict_idle(self) -> bool:
        """Close the longest-idle connection of another database than the DSN's (of that one only when no other
        is idle: it is the one kept at rest) to make room; False when none is idle."""
        oldest = min(
            (p for p in self._pools.values() if p.idle), key=lambda p: (p.main, p.idle[0][1]), default=None
        )
        if oldest is None:
            return False
        conn, _ = oldest.idle.pop(0)
        self._open -= 1
        self._close_soon([conn])
        return True

    async def _release(self, pool: _Pool, conn: AsyncConnection[Any]) -> None:
        # A query cancelled mid-flight leaves the connection busy: close it rather than reuse it.
        if conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(Exception):
                await conn.close()
            await self._give_back(pool, None)
        else:
            await self._give_back(pool, conn)

    async def _give_back(self, pool: _Pool, conn: AsyncConnection[Any] | None) -> None:
        """A lent slot returns: with its connection to keep idle, or None when there is none (closed)."""
        async with self._changed:
            pool.in_use -= 1
            self._in_use -= 1
            if conn is None:
                self._open -= 1
            else:
                pool.idle.append((conn, time.monotonic()))
                self._schedule_reap(self.idle_timeout)
            self._changed.notify_all()

    def _schedule_reap(self, delay: float) -> None:
        # Connections go idle in time order, so one timer at the earliest deadline is enough.
        if self._reap_timer is None:
            self._reap_timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._reap)

    def _reap(self) -> None:
        """Close the connections idle for `idle_timeout`, keeping the newest idle one of the DSN's database."""
        self._reap_timer = None
        now = time.monotonic()
        expired: list[AsyncConnection[Any]] = []
        next_due: float | None = None
        for pool in self._pools.values():
            # idle is oldest first: the DSN's database keeps its newest one
            candidates = pool.idle[:-1] if pool.main else pool.idle
            kept = pool.idle[-1:] if pool.main else []
            for conn, since in candidates:
                if now - since >= self.idle_timeout:
                    expired.append(conn)
                else:
                    kept.append((conn, since))
                    due = since + self.idle_timeout
                    next_due = due if next_due is None else min(next_due, due)
            pool.idle = sorted(kept, key=lambda idle: idle[1])
        self._open -= len(expired)
        self._close_soon(expired)
        if next_due is not None:
            self._schedule_reap(next_due - now)

    def _close_soon(self, conns: Sequence[AsyncConnection[Any]]) -> None:
        """Close connections already taken out of the books, in a task of their own."""
        if not conns:
            return

        async def close_all() -> None:
            for conn in conns:
                with contextlib.suppress(Exception):
                    await conn.close()

        task = asyncio.get_running_loop().create_task(close_all())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def drop_idle(self) -> None:
        """Close every idle connection to the server: it restarted, they are all broken."""
        idle = [conn for pool in self._pools.values() for conn, _ in pool.idle]
        for pool in self._pools.values():
            pool.idle = []
        self._open -= len(idle)
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.close()
        async with self._changed:
            self._changed.notify_all()

    async def close(self) -> None:
        if self._reap_timer is not None:
            self._reap_timer.cancel()
            self._reap_timer = None
        await self.drop_idle()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        self._pools = {}
