"""Connections to one server: a small pool per database, opened lazily on first use."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from exporter.config import Target

log = logging.getLogger("pgwarden.db")

APPLICATION_NAME = "pgwarden-exporter"
# Size functions lock each relation they measure; never queue behind a migration's exclusive lock.
LOCK_TIMEOUT_MS = 1000


class DatabaseUnavailable(Exception):
    """No connection to a database could be had within the connect timeout."""


@dataclass(frozen=True, slots=True)
class ServerInfo:
    version_num: int  # e.g. 150004
    datname: str  # the database named in the DSN


class Session:
    """One connection to one database, lent to a collector for one fetch."""

    def __init__(self, conn: AsyncConnection[Any], datname: str, server: ServerInfo) -> None:
        self.conn = conn
        self.datname = datname
        self.server = server

    async def rows(self, sql: str, params: Any = None, binary: bool = True) -> list[tuple[Any, ...]]:
        """Rows of one statement (its own transaction: autocommit releases its locks at once)."""
        async with self.conn.cursor(binary=binary) as cur:
            await cur.execute(sql.encode(), params)
            return await cur.fetchall()


class ServerConnections:
    """Pools to the databases of one target server, each of `pool_size` connections at most."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._pools: dict[str, AsyncConnectionPool[AsyncConnection[Any]]] = {}
        self._timeouts: weakref.WeakKeyDictionary[AsyncConnection[Any], int] = weakref.WeakKeyDictionary()
        self._lock = asyncio.Lock()
        self.main_dbname = str(psycopg.conninfo.conninfo_to_dict(target.conninfo).get("dbname") or "")

    def _conninfo(self, dbname: str | None) -> str:
        timeout = max(1, round(self.target.config.connect_timeout))
        extra: dict[str, Any] = {"connect_timeout": timeout, "application_name": APPLICATION_NAME}
        if dbname is not None:
            extra["dbname"] = dbname
        return make_conninfo(self.target.conninfo, **extra)

    async def _configure(self, conn: AsyncConnection[Any]) -> None:
        await conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}".encode())

    async def _pool(self, dbname: str | None) -> AsyncConnectionPool[AsyncConnection[Any]]:
        key = dbname or ""
        pool = self._pools.get(key)
        if pool is not None:
            return pool
        async with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = AsyncConnectionPool(
                    self._conninfo(dbname),
                    min_size=0,
                    max_size=self.target.config.pool_size,
                    open=False,
                    kwargs={"autocommit": True, "prepare_threshold": None},
                    configure=self._configure,
                    check=AsyncConnectionPool.check_connection,
                    max_idle=300,
                    reconnect_timeout=0,
                    name=f"{self.target.name}/{key or '<dsn>'}",
                )
                await pool.open(wait=False)
                self._pools[key] = pool
        return pool

    @asynccontextmanager
    async def connection(
        self, dbname: str | None = None, statement_timeout: float | None = None
    ) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection to `dbname` (None: the DSN's database), with statement_timeout set."""
        pool = await self._pool(dbname)
        try:
            cm = pool.connection(timeout=self.target.config.connect_timeout)
            conn = await cm.__aenter__()
        except PoolTimeout as exc:
            raise DatabaseUnavailable(
                f"no connection to {self.target.display if dbname is None else dbname} "
                f"within {self.target.config.connect_timeout:g}s"
            ) from exc
        try:
            if statement_timeout is not None:
                ms = max(1, int(statement_timeout * 1000))
                if self._timeouts.get(conn) != ms:
                    await conn.execute(f"SET statement_timeout = {ms}".encode())
                    self._timeouts[conn] = ms
            yield conn
        except BaseException as exc:
            await cm.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            await cm.__aexit__(None, None, None)

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(p.close(timeout=2) for p in pools), return_exceptions=True)
