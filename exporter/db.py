"""Connections to one server: a small pool per database, opened lazily on first use.

The pool is ours rather than psycopg_pool's: a scrape wants a connection now or the reason it cannot have one
(refused, bad password, timed out) at once, not a background reconnect loop that retries until a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import AsyncRowFactory, RowMaker

from exporter.sizes import RelationSizes
from pgwarden.credentials import Credentials, connect_fresh

if TYPE_CHECKING:
    from psycopg.cursor_async import AsyncCursor

    from exporter.config import Target

log = logging.getLogger("pgwarden.db")

APPLICATION_NAME = "pgwarden-exporter"
# Size functions lock each relation they measure; never queue behind a migration's exclusive lock.
LOCK_TIMEOUT_MS = 1000
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
    """One connection to one database, lent to a collector for one fetch."""

    def __init__(
        self, conn: AsyncConnection[Any], datname: str, server: ServerInfo, sizes: RelationSizes | None = None
    ) -> None:
        self.conn = conn
        self.datname = datname
        self.server = server
        self.sizes = sizes or RelationSizes()

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

    async def table_sizes(self, oids: Sequence[int]) -> dict[int, int | None]:
        """pg_table_size of each table, shared with the other collectors of the same scrape."""
        return await self.sizes.measure(self.datname, self.rows, oids, "table")

    async def index_sizes(self, oids: Sequence[int]) -> dict[int, int | None]:
        """pg_relation_size of each index, shared with the other collectors of the same scrape."""
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
    """At most `size` connections to one database; idle ones are kept for reuse."""

    def __init__(
        self,
        conninfo: str,
        size: int,
        connect_timeout: float,
        label: str,
        on_reset: Callable[[], Awaitable[None]] | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        self.on_reset = on_reset
        self.credentials = credentials
        self.conninfo = conninfo
        self.connect_timeout = connect_timeout
        self.label = label
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[AsyncConnection[Any], float]] = []

    async def _reusable(self, check: bool) -> AsyncConnection[Any] | None:
        now = time.monotonic()
        while self._idle:
            conn, since = self._idle.pop()
            if conn.closed or now - since > MAX_IDLE:
                await conn.close()
                continue
            if check or now - since > CHECK_AFTER:
                try:
                    await conn.execute(b"")
                except psycopg.Error:
                    # The server went away (restart, failover): its other idle connections are gone too.
                    await conn.close()
                    await (self.on_reset() if self.on_reset else self.close())
                    return None
            return conn
        return None

    async def _connect(self) -> AsyncConnection[Any]:
        try:
            async with asyncio.timeout(self.connect_timeout):
                conn = await connect_fresh(self.credentials, self._open)
                await conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}".encode())
                return conn
        except TimeoutError:
            raise DatabaseUnavailable(f"{self.label}: no answer within {self.connect_timeout:g}s") from None
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"{self.label}: {_reason(exc)}") from None

    async def _open(self, params: dict[str, str]) -> AsyncConnection[Any]:
        """A new connection; `params` (a secret's current password, an IAM token) override the conninfo's."""
        conninfo = make_conninfo(self.conninfo, **params)
        return await AsyncConnection.connect(conninfo, autocommit=True, prepare_threshold=None)

    @asynccontextmanager
    async def connection(self, check: bool = False) -> AsyncIterator[AsyncConnection[Any]]:
        """A live connection; `check=True` proves a reused one alive with a round trip first."""
        async with self._slots:
            conn = await self._reusable(check) or await self._connect()
            try:
                yield conn
            finally:
                # A query cancelled mid-flight leaves the connection busy: close it rather than reuse it.
                if conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
                    with contextlib.suppress(Exception):
                        await conn.close()
                else:
                    self._idle.append((conn, time.monotonic()))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            with contextlib.suppress(Exception):
                await conn.close()


def _reason(exc: psycopg.Error) -> str:
    """The server's or libpq's reason, first line only: it names host and user, never the password."""
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    # libpq prefixes "connection failed: connection to server at ... failed: " before the reason
    reason = lines[0] if lines else type(exc).__name__
    return reason.rsplit("failed: ", 1)[-1] if "failed: " in reason else reason


class ServerConnections:
    """Pools to the databases of one target server, each of `pool_size` connections at most."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._pools: dict[str, _Pool] = {}
        self._timeouts: weakref.WeakKeyDictionary[AsyncConnection[Any], int] = weakref.WeakKeyDictionary()
        self.main_dbname = str(conninfo_to_dict(target.conninfo).get("dbname") or "")

    def _pool(self, dbname: str | None) -> _Pool:
        key = dbname or ""
        pool = self._pools.get(key)
        if pool is None:
            config = self.target.config
            extra: dict[str, Any] = {
                "connect_timeout": max(1, round(config.connect_timeout)),
                "application_name": APPLICATION_NAME,
            }
            if dbname is not None:
                extra["dbname"] = dbname
            label = self.target.display if dbname is None else f"database {dbname}"
            pool = _Pool(
                make_conninfo(self.target.conninfo, **extra),
                config.pool_size,
                config.connect_timeout,
                label,
                on_reset=self.drop_idle,
                credentials=self.target.credentials,
            )
            self._pools[key] = pool
        return pool

    @asynccontextmanager
    async def connection(
        self, dbname: str | None = None, statement_timeout: float | None = None, check: bool = False
    ) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection to `dbname` (None: the DSN's database), with statement_timeout set."""
        async with self._pool(dbname).connection(check) as conn:
            if statement_timeout is not None:
                ms = max(1, int(statement_timeout * 1000))
                if self._timeouts.get(conn) != ms:
                    await conn.execute(f"SET statement_timeout = {ms}".encode())
                    self._timeouts[conn] = ms
            yield conn

    async def drop_idle(self) -> None:
        """Close every idle connection to the server: it restarted, they are all broken."""
        await asyncio.gather(*(p.close() for p in self._pools.values()), return_exceptions=True)

    async def close(self) -> None:
        await self.drop_idle()
        self._pools = {}
