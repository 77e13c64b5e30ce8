"""What only a session on the target knows, read-only: each table's live rows (the statistics' `n_live_tup`, or
`reltuples` where that is larger), which functions are volatile, the planner's row estimate of a filtered
UPDATE/DELETE, and the sessions whose transaction is older than `max_transaction_age` and holds a lock on a table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from pglast import ast
from pglast.stream import RawStream
from psycopg import sql

from responder.migrate.findings import Finding
from responder.migrate.settings import MigrationsSchema
from responder.migrate.statements import SizeRisk, Statement, TableRef


@dataclass(frozen=True, slots=True)
class Settings:
    large_table_rows: int
    max_transaction_age: float  # seconds
    batch_size: int  # an UPDATE/DELETE the planner expects to touch more rows than this is unbatched

    @classmethod
    def of(cls, migrations: MigrationsSchema) -> Settings:
        return cls(
            migrations.lint.large_table_rows,
            migrations.preflight.max_transaction_age,
            migrations.backfill.batch_size,
        )


@dataclass(frozen=True, slots=True)
class OldTransaction:
    pid: int
    user: str
    application: str
    age: float  # seconds

    def describe(self) -> str:
        return f"pid {self.pid}, user {self.user}, application {self.application or '-'}, age {self.age:.0f}s"


class Target:
    """A read-only session on the target, and what the lint asked it (each table once)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        self._oids: dict[TableRef, int | None] = {}
        self._volatile: dict[str, bool] = {}

    @classmethod
    async def open(cls, conn: psycopg.AsyncConnection[Any]) -> Target:
        # every transaction of this session read-only: lint never changes the target
        await conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        return cls(conn)

    async def server_version(self) -> str:
        """`major.minor`, as squawk's --pg-version takes it."""
        number = int(await self._value("SELECT current_setting('server_version_num')::int"))
        return f"{number // 10000}.{number % 100}"

    async def _value(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        cur = await self.conn.execute(query, params)
        row = await cur.fetchone()
        return row[0] if row else None

    async def oid(self, table: TableRef) -> int | None:
        """The table's oid through the search path, None when it does not exist (yet)."""
        if table not in self._oids:
            name = sql.Identifier(*([table.schema] if table.schema else []), table.name).as_string(self.conn)
            self._oids[table] = await self._value("SELECT to_regclass(%s)::oid::bigint", (name,))
        return self._oids[table]

    async def live_rows(self, oid: int) -> int:
        return int(
            await self._value(
                "SELECT greatest(coalesce(s.n_live_tup, 0), c.reltuples::bigint, 0) FROM pg_class c "
                "LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid WHERE c.oid = %s",
                (oid,),
            )
            or 0
        )

    async def any_volatile(self, functions: tuple[str, ...]) -> list[str]:
        """Those of `functions` that some volatile function of that name answers to."""
        missing = [f for f in functions if f not in self._volatile]
        if missing:
            cur = await self.conn.execute(
                "SELECT name, EXISTS (SELECT 1 FROM pg_proc WHERE proname = name AND provolatile = 'v') "
                "FROM unnest(%s::text[]) AS name",
                (missing,),
            )
            self._volatile.update({name: bool(v) for name, v in await cur.fetchall()})
        return [f for f in functions if self._volatile.get(f)]

    async def estimated_rows(self, node: ast.Node) -> int | None:
        """The planner's row estimate for one UPDATE/DELETE (EXPLAIN without ANALYZE: it never runs), rendered
        from its parse tree so nothing but that one statement reaches the server; None if it cannot plan it."""
        query = "EXPLAIN (FORMAT JSON) " + RawStream()(node)
        try:
            async with self.conn.transaction():
                cur = await self.conn.execute(query)
                row = await cur.fetchone()
        except psycopg.Error:
            return None
        if not row:
            return None
        plan = row[0][0]["Plan"]
        # the ModifyTable node on top estimates the rows it returns (none without RETURNING): its input's
        plan = plan.get("Plans", [plan])[0] if plan.get("Node Type") == "ModifyTable" else plan
        return int(plan["Plan Rows"])

    async def old_transactions(self, oid: int, max_age: float) -> list[OldTransaction]:
        """Sessions holding a lock on the table in a transaction older than `max_age` seconds."""
        cur = await self.conn.execute(
            "SELECT DISTINCT a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''), "
            "extract(epoch FROM now() - a.xact_start)::float8 "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'relation' AND l.relation = %s AND l.granted AND a.pid <> pg_backend_pid() "
            "AND a.xact_start < now() - make_interval(secs => %s) ORDER BY 4 DESC, 1",
            (oid, max_age),
        )
        return [OldTransaction(int(p), str(u), str(a), float(age)) for p, u, a, age in await cur.fetchall()]


async def live_findings(statements: Sequence[Statement], target: Target, settings: Settings) -> list[Finding]:
    """The size rules (an error above `large_table_rows` live rows, a warning below, saying the size) and the
    long-transaction rule, over the statements of tables that exist on the target."""
    findings: list[Finding] = []
    for statement in statements:
        for risk in statement.size_risks:
            if (finding := await _size_finding(statement, risk, target, settings)) is not None:
                findings.append(finding)
        for table in dict.fromkeys(statement.exclusive_tables):
            oid = await target.oid(table)
            if oid is None:
                continue
            for old in await target.old_transactions(oid, settings.max_transaction_age):
                message = (
                    f"takes an ACCESS EXCLUSIVE lock on {table.display}, where a transaction older than "
                    f"{settings.max_transaction_age:g}s holds a lock right now ({old.describe()}): the statement "
                    "would wait behind it and queue every query on the table"
                )
                findings.append(
                    Finding(str(statement.path), statement.line, "error", "long-transaction-lock", message)
                )
    return findings


async def _size_finding(
    statement: Statement, risk: SizeRisk, target: Target, settings: Settings
) -> Finding | None:
    oid = await target.oid(risk.table)
    if oid is None:  # created by an earlier migration, not yet on the target: empty when this one runs
        return None
    what = risk.what
    if risk.functions:
        volatile = await target.any_volatile(risk.functions)
        if not volatile:
            return None
        what += f" ({', '.join(volatile)} is volatile)"
    if risk.filtered:
        estimate = await target.estimated_rows(statement.node)
        if estimate is not None and estimate <= settings.batch_size:
            return None
        what += (
            f" (the planner expects {estimate:,} rows)"
            if estimate is not None
            else " (the planner could not estimate its rows: the role needs the owner's privileges)"
        )
    rows = await target.live_rows(oid)
    large = rows > settings.large_table_rows
    size = f"{risk.table.display} has {rows:,} live rows" + (
        f", over large_table_rows ({settings.large_table_rows:,})"
        if large
        else f", at most large_table_rows ({settings.large_table_rows:,})"
    )
    return Finding(
        str(statement.path), statement.line, "error" if large else "warning", risk.rule, f"{what}; {size}"
    )
