"""The journal from outside the responder: raw statements on either store, and a journal refusing writes."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from devtools.pgserver import PostgresServer


def journal_sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One statement (`?` placeholders) on either journal, from outside the responder, committed."""
    if url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10)) as db:
            rows = db.execute(statement, params).fetchall()
            db.commit()
            return rows
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement.replace("?", "%s").encode(), params)
        return cur.fetchall() if cur.description else []


class ReadOnlyJournal:
    """The journal refusing every write, as a database that failed over looks to clients still connected to
    the old writer. PostgreSQL: the journal's database turns `default_transaction_read_only` and its sessions
    are ended (new ones are read-only, and writes raise ReadOnlySqlTransaction). SQLite: triggers abort every
    write (an error that is not OperationalError)."""

    TABLES = ("pgwarden_actions", "pgwarden_replicas")

    def __init__(self, url: str, server: PostgresServer | None) -> None:
        self.url = url
        self.server = server

    def _pg(self, setting: str) -> None:
        assert self.server is not None
        dbname = conninfo_to_dict(self.url)["dbname"]
        self.server.execute(f"ALTER DATABASE {dbname} {setting}")
        self.server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            params=(dbname,),
        )

    def _refuse_writes(self, refuse: bool) -> None:
        if self.server is not None:
            self._pg(
                "SET default_transaction_read_only = on" if refuse else "RESET default_transaction_read_only"
            )
            return
        for table in self.TABLES:
            for op in ("INSERT", "UPDATE", "DELETE"):
                trigger = f"ro_{table}_{op.lower()}"
                abort = "BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database'); END"
                create = f"CREATE TRIGGER {trigger} BEFORE {op} ON {table} {abort}"
                journal_sql(self.url, create if refuse else f"DROP TRIGGER {trigger}")

    @contextlib.contextmanager
    def refusing(self) -> Iterator[None]:
        """Writes refused inside the block, and allowed again however it ends."""
        self._refuse_writes(True)
        try:
            yield
        finally:
            self._refuse_writes(False)
