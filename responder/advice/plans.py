"""Generic plans of hostile statement texts, never executed.

On PostgreSQL 16+: `EXPLAIN (GENERIC_PLAN)`. On 13-15: `PREPARE`, `plan_cache_mode = force_generic_plan` and
`EXPLAIN EXECUTE` with NULL for each placeholder (a generic plan does not look at the values). Never ANALYZE.
Each plan is made in its own read-only transaction, rolled back, with a statement and a lock timeout.

One statement only, as the server itself sees it: a text holding `; COMMIT; DROP ...` would end the read-only
transaction. PREPARE goes over the extended protocol, which takes one statement per message. `EXPLAIN
(GENERIC_PLAN)` must go over the simple protocol (over the extended one its $n are parameters the client has to
bind, and bound values make the plan custom), so the same bytes are first sent as a Parse message alone (the
extended protocol's "cannot insert multiple commands"), and run only when the server parsed one statement.
A prepared statement outlives its transaction, so it is deallocated after.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import generators, pq

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
                    query = b"EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) " + statement.text.encode()
                    await self._one_statement(query)
                    cur = self.conn.cursor()  # the simple protocol: $n stay unbound placeholders
                    await cur.execute(query)
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

    async def _one_statement(self, query: bytes) -> None:
        """PlanFailed unless the server parses `query` as one statement: a Parse message alone (an unnamed
        prepared statement, never bound nor executed)."""
        self.conn.pgconn.send_prepare(b"", query)
        results = await self.conn.wait(generators.execute(self.conn.pgconn))
        failed = [r for r in results if r.status != pq.ExecStatus.COMMAND_OK]
        if failed:
            message = (
                (failed[0].error_message or b"").decode(errors="replace").removeprefix("ERROR:  ").strip()
            )
            raise PlanFailed(
                f"{message} (SQLSTATE {(failed[0].error_field(pq.DiagnosticField.SQLSTATE) or b'').decode()})"
            )


def reason(exc: psycopg.Error) -> str:
    """The server's message (first line) and SQLSTATE: what the report shows for a statement not planned."""
    message = (exc.diag.message_primary or str(exc)).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{message} (SQLSTATE {exc.sqlstate})" if exc.sqlstate else message
