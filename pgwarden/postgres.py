"""One way to open a PostgreSQL session, for both programs.

`SessionOptions` says what every session of a caller gets (its application_name, libpq's connect timeout, the
database, lock and statement timeouts); `conninfo` applies them and the fresh credential parameters to a DSN;
`connect` opens an autocommit session with them, taking the password from `Credentials` (a Secrets Manager
secret, re-read when the server refuses it; an RDS IAM token) when the server has some.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from pgwarden.credentials import Credentials, connect_fresh


def libpq_seconds(seconds: float) -> int:
    """libpq's connect_timeout counts whole seconds, and 0 means no timeout at all: at least 1."""
    return max(1, round(seconds))


def milliseconds(seconds: float) -> int:
    """A PostgreSQL timeout setting in ms; at least 1 (0 would turn the timeout off)."""
    return max(1, int(seconds * 1000))


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """What every session a caller opens gets."""

    application_name: str
    connect_timeout: float = 5.0  # seconds, for libpq (see `libpq_seconds`)
    dbname: str | None = None  # None: the DSN's own database
    lock_timeout: float | None = None  # seconds; SET once connected
    statement_timeout: float | None = None  # seconds; SET once connected
    prepare_threshold: int | None = 5  # psycopg's; None: never prepare statements on the server

    def settings(self) -> list[bytes]:
        """The SET statements a new session runs (not startup `options`: poolers such as PgBouncer refuse
        those)."""
        timeouts = (("lock_timeout", self.lock_timeout), ("statement_timeout", self.statement_timeout))
        return [
            f"SET {name} = {milliseconds(value)}".encode() for name, value in timeouts if value is not None
        ]


def conninfo(dsn: str, options: SessionOptions, params: Mapping[str, str] | None = None) -> str:
    """The DSN with the options' application_name, connect_timeout and database, and `params` (a secret's
    current password, an IAM token: see `pgwarden.credentials`) over it."""
    extra: dict[str, Any] = {
        "application_name": options.application_name,
        "connect_timeout": libpq_seconds(options.connect_timeout),
    }
    if options.dbname is not None:
        extra["dbname"] = options.dbname
    return make_conninfo(dsn, **{**extra, **(params or {})})


async def connect(
    dsn: str, options: SessionOptions, credentials: Credentials | None = None
) -> psycopg.AsyncConnection[Any]:
    """An autocommit session with `options`; with `credentials`, fresh ones, renewed and tried once more when
    the server refuses them (a rotated secret, an expired token)."""

    async def open_with(params: dict[str, str]) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(
            conninfo(dsn, options, params), autocommit=True, prepare_threshold=options.prepare_threshold
        )
        try:
            for statement in options.settings():
                await conn.execute(statement)
        except BaseException:
            await conn.close()
            raise
        return conn

    return await connect_fresh(credentials, open_with)
