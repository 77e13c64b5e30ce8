"""The two stores: SQLite (group commit by a single writer task) and PostgreSQL (a small pool)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psycopg
import psycopg_pool
import tenacity

from pgwarden.credentials import Credentials, PoolCredentials
from pgwarden.dsn import describe_dsn
from responder.journal.migrations import MIGRATIONS, JournalTooNew, Migration, migrate
from responder.journal.ops import op_ping
from responder.journal.tx import JournalUnavailable, T, Tx

log = logging.getLogger("responder.journal")


class Store(Protocol):
    postgres: bool

    def describe(self) -> str: ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def run(self, op: Callable[[Tx], T], heavy: bool = False) -> T: ...
    async def ping(self) -> None: ...


class _OpFailed(Exception):
    """An operation of a batch raised; the batch is replayed with each operation isolated."""


_Pending = tuple[Callable[[Tx], Any], "asyncio.Future[Any]", bool]  # the operation, its future, heavy
_Results = list[tuple[Any, BaseException | None]]
BUSY_TIMEOUT_MS = 1000
# Opening waits this long for another process that holds the file's lock (a replica or `migrate` migrating the
# schema, or switching the file to WAL: SQLite answers that switch "locked" without waiting for its busy timeout).
OPEN_PATIENCE = 15.0


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


@dataclass
class SqliteStore:
    """A single writer task: the operations that arrive while a batch is being written go into the next
    transaction together (group commit), and one thread hand-over is paid per batch, not per webhook.

    A small batch runs its statements on the loop (page-cache fast; in a thread they would compete with the
    loop for the GIL statement by statement) when the write lock is free at once, and only COMMIT, which waits
    for the disk, in the writer thread. Everything that could keep the loop waiting runs wholly in that thread:
    a batch with a heavy operation (a large payload's inserts), a batch whose write lock another process holds
    (BEGIN waits up to the 1 s busy timeout, then `JournalUnavailable`), the replay of a failed batch."""

    path: Path
    max_batch: int = 1024
    checkpoint_every: float = 1.0
    migrations: Sequence[Migration] = MIGRATIONS
    postgres: bool = False
    migrated: list[int] = field(default_factory=list)  # the schema versions this store applied as it opened
    _conn: sqlite3.Connection | None = None
    _tx: Tx | None = None
    _pending: list[_Pending] = field(default_factory=list)
    _wake: asyncio.Event | None = None
    _writer: asyncio.Task[None] | None = None
    _committer: concurrent.futures.ThreadPoolExecutor | None = None
    _checkpointer: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _closing: bool = False
    _reader: sqlite3.Connection | None = None
    _reader_lock: threading.Lock = field(default_factory=threading.Lock)

    def describe(self) -> str:
        """The journal as configured: `sqlite:///abs/path` (three slashes), or `sqlite:relative/path`."""
        return f"sqlite://{self.path}" if self.path.is_absolute() else f"sqlite:{self.path}"

    async def start(self) -> None:
        self._committer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="journal-commit")
        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(self._committer, self._open)
        except JournalUnavailable:
            self._committer.shutdown(wait=False)
            raise
        except (sqlite3.Error, OSError) as exc:
            self._committer.shutdown(wait=False)
            raise JournalUnavailable(f"cannot open {self.describe()}: {exc}") from exc
        self._tx = Tx(self._conn, postgres=False)
        self._wake = asyncio.Event()
        self._closing = False
        self._writer = asyncio.create_task(self._write_loop(), name="journal-writer")
        self._stop.clear()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="journal-checkpoint", daemon=True
        )
        self._checkpointer.start()

    @tenacity.retry(
        retry=tenacity.retry_if_exception(_locked),
        wait=tenacity.wait_exponential(multiplier=0.05, max=1.0),
        stop=tenacity.stop_after_delay(OPEN_PATIENCE),
        reraise=True,
    )
    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=1.0)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # durable: the WAL is fsynced at every COMMIT
            conn.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoint_loop
            conn.execute("PRAGMA journal_size_limit=67108864")
            conn.execute("BEGIN IMMEDIATE")  # the journal's lock while the schema is read and migrated
            self.migrated = migrate(Tx(conn, postgres=False), self.migrations)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None and self._wake is not None:
            self._wake.set()
            await self._writer
            self._writer = None
        self._stop.set()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join, 10)
            self._checkpointer = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        if self._committer is not None:
            self._committer.shutdown(wait=True)
            self._committer = None

    async def run(self, op: Callable[[Tx], T], heavy: bool = False) -> T:
        if self._writer is None or self._wake is None or self._closing:
            raise JournalUnavailable("journal is closed")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((op, fut, heavy))
        self._wake.set()
        return await fut

    async def ping(self) -> None:
        """The writer is alive and the file answers a read, on a connection of its own: never queued behind the
        writer's batches. A read in WAL mode does not wait for the write lock, so it runs on the loop (a thread
        would wait for the GIL behind a large batch); only if SQLite says busy is it retried in a thread."""
        if self._writer is None or self._writer.done() or self._closing:
            raise JournalUnavailable("journal is closed")
        if self._reader_lock.acquire(blocking=False):  # never wait on the loop for a probe in a thread
            try:
                if self._read_probe(wait=False):
                    return
            finally:
                self._reader_lock.release()
        await asyncio.to_thread(self._read_probe_waiting)

    def _read_probe_waiting(self) -> None:
        with self._reader_lock:
            self._read_probe(wait=True)

    def _read_probe(self, wait: bool) -> bool:
        """One read on the reader connection (the caller holds `_reader_lock`); False if busy and not `wait`."""
        try:
            if self._reader is None:
                self._reader = sqlite3.connect(self.path, check_same_thread=False, timeout=0)
            self._reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS if wait else 0}")
            self._reader.execute("SELECT 1 FROM pgwarden_replicas LIMIT 1").fetchall()
        except sqlite3.OperationalError as exc:
            if not wait:
                return False
            raise JournalUnavailable(f"{self.describe()}: {exc}") from exc
        except sqlite3.Error as exc:
            raise JournalUnavailable(f"{self.describe()}: {exc}") from exc
        return True

    async def _write_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                results = await self._write(batch)
                for (_, fut, _), (value, exc) in zip(batch, results, strict=True):
                    if fut.done():
                        continue
                    if exc is not None:
                        fut.set_exception(exc)
                    else:
                        fut.set_result(value)
            if self._closing:
                return

    async def _write(self, batch: list[_Pending]) -> _Results:
        assert self._conn is not None
        loop = asyncio.get_running_loop()
        if not any(heavy for _, _, heavy in batch):
            try:
                results = self._on_loop(batch)
                if results is not None:
                    await loop.run_in_executor(self._committer, self._conn.execute, "COMMIT")
                    return results
            except sqlite3.Error as exc:
                return self._failed(batch, exc)
        return await loop.run_in_executor(self._committer, self._run_batch, batch)

    def _on_loop(self, batch: list[_Pending]) -> _Results | None:
        """The batch's statements, if the write lock can be had without waiting; None if it cannot, or if an
        operation failed (the thread replays the batch)."""
        assert self._conn is not None
        conn = self._conn
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return None  # another connection holds the write lock: wait for it in the thread
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        try:
            return self._statements(batch, isolate=False)
        except _OpFailed:
            return None

    def _run_batch(self, batch: list[_Pending]) -> _Results:
        """In the writer thread: all operations in one transaction, one fsync. Operations rarely fail; when
        one does, the batch is rolled back and replayed with a SAVEPOINT around each operation, so only the
        failing one fails. Any SQLite error is `JournalUnavailable` (503), never a 500."""
        assert self._conn is not None
        conn = self._conn
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
                results = self._statements(batch, isolate=False)
            except _OpFailed:
                conn.execute("BEGIN IMMEDIATE")
                results = self._statements(batch, isolate=True)
            conn.execute("COMMIT")
            return results
        except sqlite3.Error as exc:
            return self._failed(batch, exc)

    def _failed(self, batch: list[_Pending], exc: sqlite3.Error) -> _Results:
        assert self._conn is not None
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")
        log.error("journal write failed", extra={"journal": self.describe(), "error": str(exc)})
        return [(None, JournalUnavailable(f"{self.describe()}: {exc}"))] * len(batch)

    def _statements(self, batch: list[_Pending], isolate: bool) -> _Results:
        """The operations, in the transaction the caller began; rolled back if any raises."""
        assert self._conn is not None and self._tx is not None
        conn, tx = self._conn, self._tx
        results: _Results = []
        try:
            for op, _, _ in batch:
                if not isolate:
                    try:
                        results.append((op(tx), None))
                    except sqlite3.OperationalError:
                        raise
                    except Exception as exc:
                        raise _OpFailed() from exc
                    continue
                conn.execute("SAVEPOINT op")
                try:
                    results.append((op(tx), None))
                    conn.execute("RELEASE op")
                except sqlite3.OperationalError:
                    raise
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    if isinstance(exc, sqlite3.Error):
                        exc = JournalUnavailable(f"{self.describe()}: {exc}")
                    results.append((None, exc))
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return results

    def _checkpoint_loop(self) -> None:
        """WAL checkpoints off the writer's path: a checkpoint fsyncs the database file, which can take far
        longer than a commit; in the writer (SQLite's auto-checkpoint) it would stall every webhook behind it."""
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
        except sqlite3.Error:
            return
        with contextlib.closing(conn):
            while not self._stop.wait(self.checkpoint_every):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    log.warning("journal checkpoint failed", extra={"error": str(exc)})


@dataclass
class PostgresStore:
    """One transaction per operation on a small synchronous pool, run in worker threads."""

    conninfo: str
    pool_size: int = 8
    timeout: float = 3.0
    credentials: Credentials | None = None
    migrations: Sequence[Migration] = MIGRATIONS
    postgres: bool = True
    migrated: list[int] = field(default_factory=list)  # the schema versions this store applied as it opened
    _pool: psycopg_pool.ConnectionPool | None = None
    _executor: concurrent.futures.ThreadPoolExecutor | None = None

    def describe(self) -> str:
        return f"postgresql:{describe_dsn(self.conninfo)}"

    async def start(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(self.pool_size, thread_name_prefix="journal")
        kwargs: dict[str, Any] = {
            "application_name": "pgwarden-responder-journal",
            "connect_timeout": max(1, int(self.timeout)),
        }
        fresh = PoolCredentials(self.credentials, kwargs) if self.credentials is not None else None
        self._pool = psycopg_pool.ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=self.pool_size,
            open=False,
            timeout=self.timeout,
            kwargs=fresh.kwargs if fresh is not None else kwargs,
            configure=fresh.configure if fresh is not None else None,
        )
        try:
            await asyncio.to_thread(self._pool.open, True, self.timeout)
            self.migrated = await self.run(lambda tx: migrate(tx, self.migrations))
        except JournalTooNew:
            await self.close()
            raise
        except (psycopg.Error, psycopg_pool.PoolTimeout, JournalUnavailable) as exc:
            await self.close()
            raise JournalUnavailable(f"cannot open {self.describe()}: {exc}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await asyncio.to_thread(self._pool.close, 5.0)
            self._pool = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _call(self, op: Callable[[Tx], T]) -> T:
        assert self._pool is not None
        try:
            with self._pool.connection() as conn, conn.transaction():
                return op(Tx(conn, postgres=True))
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            # Any error of the journal's database (a read-only transaction after a failover too) is a 503.
            raise JournalUnavailable(f"{self.describe()}: {type(exc).__name__}: {exc}") from exc

    async def run(self, op: Callable[[Tx], T], heavy: bool = False) -> T:
        if self._pool is None or self._executor is None:
            raise JournalUnavailable("journal is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, op)

    async def ping(self) -> None:
        await self.run(op_ping)
