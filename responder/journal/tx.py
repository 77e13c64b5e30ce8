"""The transaction handle every journal operation runs on, on either store, and the journal's one error."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pgwarden.redact import redact

T = TypeVar("T")


class JournalUnavailable(Exception):
    """The store cannot be read or written; the webhook answers 503 so Alertmanager retries. Its message
    (logged, printed) never shows a password, whatever the driver's error quoted."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class _Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    @property
    def rowcount(self) -> int: ...


@dataclass
class Tx:
    """One transaction on either store; SQL is written with `?` placeholders."""

    conn: Any
    postgres: bool
    _now: float | None = None

    def now(self) -> float:
        """The time every comparison of this transaction uses: with PostgreSQL the database's `now()` (one
        clock for all replicas), with SQLite (one process) this process's clock."""
        if not self.postgres:
            return time.time()
        if self._now is None:
            self._now = float(self.execute("SELECT extract(epoch FROM now())::float8").fetchone()[0])
        return self._now

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        if self.postgres:
            sql = sql.replace("?", "%s")
        cur: _Cursor = self.conn.execute(sql, tuple(params))
        return cur

    def lock(self, key: str) -> None:
        """Serialise writers on `key` until the end of the transaction (SQLite: already serialised)."""
        if self.postgres:
            self.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (key,))
