"""Generic plans of hostile statement texts, never executed.

On PostgreSQL 16+: `EXPLAIN (GENERIC_PLAN)`. On 13-15: `PREPARE`, `plan_cache_mode = force_generic_plan` and
`EXPLAIN EXECUTE` with NULL for each placeholder (a generic plan does not look at the values). Never ANALYZE.
Each plan is made in its own read-only transaction, rolled back, with a statement and a lock timeout, over the
extended protocol (one statement per message: a text holding `; COMMIT; DROP ...` is refused by the server).
A prepared statement outlives its transaction, so it is deallocated after.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from pgwarden.postgres import milliseconds
from responder.advice.statements import Statement

PREPARED = "pgwarden_advice"


class PlanFailed(Exception):
    """The server refused to plan a statement; the message says why."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A statement's generic plan (the JSON plan's top node) and its estimated total cost."""

    statement: Statement
    root: dict[str, Any]

    @property
    def cost(self) -> float:
        return float(self.root.get("Total Cost", 0.0))


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A plan node and all its descendants, depth first."""
    yield node
    for child in node.get("Plans", ()):
        yield from nodes(child)


class Planner:
    """Plans statements in one session (the hypothetical indexes of `hypo` live in it too)."""

    def __init__(
        self, conn: psycopg.AsyncConnection[Any], statement_timeout: float, lock_timeout: float
    ) -> None:
        self.conn = conn
        self.generic_plan_option = conn.info.server_version >= 160000
        self.statement_timeout = milliseconds(statement_timeout)
        self.lock_timeout = milliseconds(lock_timeout)

    async def plan(self, statement: Statement) -> Plan:
        """The statement's generic plan; PlanFailed with the server's reason when it cannot be planned."""
        prepared = False
        try:
            async with self.conn.transaction(force_rollback=True):
                cur = self.conn.cursor(binary=True)  # binary: the extended protocol, one statement only
                await cur.execute(b"SET TRANSACTION READ ONLY")
                await cur.execute(f"SET LOCAL statement_timeout = {self.statement_timeout}".encode())
                await cur.execute(f"SET LOCAL lock_timeout = {self.lock_timeout}".encode())
                if self.generic_plan_option:
                    await cur.execute(
                        b"EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) " + statement.text.encode()
                    )
                else:
                    await cur.execute(b"SET LOCAL plan_cache_mode = force_generic_plan")
                    await cur.execute(f"PREPARE {PREPARED} AS ".encode() + statement.text.encode())
                    prepared = True
                    values = f"({', '.join(['NULL'] * statement.params)})" if statement.params else ""
                    await cur.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE {PREPARED}{values}".encode())
                row = await cur.fetchone()
        except psycopg.Error as exc:
            raise PlanFailed(reason(exc)) from None
        finally:
            if prepared:
                await self.conn.execute(f"DEALLOCATE {PREPARED}".encode())
        if row is None or not row[0]:
            raise PlanFailed("EXPLAIN returned no plan")
        document = row[0]
        root: dict[str, Any] = document[0]["Plan"]
        return Plan(statement, root)


def reason(exc: psycopg.Error) -> str:
    """The server's message (first line) and SQLSTATE: what the report shows for a statement not planned."""
    message = (exc.diag.message_primary or str(exc)).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{message} (SQLSTATE {exc.sqlstate})" if exc.sqlstate else message
