"""One advice run for a target: its top statements per database, their generic plans and findings, and (where
hypopg is created) the indexes that would make them cheaper. Only planning: no statement of the workload runs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg

from pgwarden.credentials import Credentials
from pgwarden.postgres import SessionOptions, connect
from responder.advice.candidates import Candidate, candidates, tables_of
from responder.advice.catalog import Catalog, read_catalog
from responder.advice.consolidate import consolidate
from responder.advice.findings import find
from responder.advice.guard import read_unsafe
from responder.advice.hypo import Hypothetical, choose
from responder.advice.model import Advice, DatabaseAdvice, NotPlanned, Recommendation, StatementPlan
from responder.advice.plans import Plan, PlanFailed, Planner, reason
from responder.advice.statements import Skipped, Statement, stat_statements_schema, top_statements

APPLICATION = "pgwarden-advise"
ROUNDS = 3  # of trials: an index, then one that helps the statements it served further, then one more
NO_STAT_STATEMENTS = (
    "pg_stat_statements is not created in the target's database: CREATE EXTENSION pg_stat_statements"
    " (and shared_preload_libraries = pg_stat_statements)"
)


@dataclass(frozen=True, slots=True)
class Settings:
    """What one run looks at and what it calls worth an index."""

    top: int = 50  # statements per database, by total time
    large_rows: float = (
        10_000  # a filtered seq scan on a table over this is a finding; smaller tables get no index
    )
    outer_rows: float = 10_000  # a nested loop over this many outer rows is a finding
    min_saving: float = 0.5  # an index is recommended when it cuts its statements' weighted cost by this much
    write_heavy_rate: float = 10.0  # rows written a second (and more written than read): write-heavy
    statement_timeout: float = 5.0  # seconds, for each plan and catalog read
    lock_timeout: float = 1.0  # seconds: planning takes AccessShareLock on the tables, never waits long
    connect_timeout: float = 5.0
    max_candidates: int = 300  # per database: what bounds the run's cost on a huge workload


@dataclass(frozen=True, slots=True)
class Server:
    """Where to connect: a configured target's name, DSN and credentials."""

    name: str
    conninfo: str
    credentials: Credentials | None = None


def _options(settings: Settings, dbname: str | None = None) -> SessionOptions:
    return SessionOptions(
        APPLICATION,
        connect_timeout=settings.connect_timeout,
        dbname=dbname,
        lock_timeout=settings.lock_timeout,
        statement_timeout=settings.statement_timeout,
        prepare_threshold=None,  # never a server-side prepared statement of ours beside the plans' own
    )


async def advise(server: Server, settings: Settings, databases: set[str] | None = None) -> Advice:
    """The advice for `server`: every database with statements in pg_stat_statements, or `databases`."""
    started = time.monotonic()
    advice = Advice(server.name, 0)
    try:
        conn = await connect(server.conninfo, _options(settings), server.credentials)
    except psycopg.Error as exc:
        advice.error = f"not reachable: {reason(exc)}"
        return advice
    async with conn:
        advice.server_version = conn.info.server_version
        schema = await stat_statements_schema(conn)
        if schema is None:
            advice.error = NO_STAT_STATEMENTS
            return advice
        try:
            kept, skipped = await top_statements(conn, schema, settings.top, databases)
        except psycopg.Error as exc:
            advice.error = f"pg_stat_statements not readable: {reason(exc)}"
            return advice
    for database in sorted(set(kept) | (databases or set())):
        refused = [s for s in skipped if s.statement.database == database]
        advice.databases.append(
            await advise_database(server, database, kept.get(database, []), refused, settings)
        )
    advice.seconds = time.monotonic() - started
    return advice


async def advise_database(
    server: Server, database: str, statements: list[Statement], skipped: list[Skipped], settings: Settings
) -> DatabaseAdvice:
    """One database's plans, findings and (with hypopg) index recommendations."""
    result = DatabaseAdvice(
        database,
        not_planned=[NotPlanned(s.statement, s.reason) for s in skipped if not s.other_kind],
        other_kinds=sum(s.other_kind for s in skipped),
    )
    try:
        conn = await connect(server.conninfo, _options(settings, database), server.credentials)
    except psycopg.Error as exc:
        result.error = f"not reachable: {reason(exc)}"
        return result
    async with conn:
        try:
            await _examine(conn, result, statements, settings)
        except psycopg.Error as exc:
            result.error = reason(exc)
    return result


async def _examine(
    conn: psycopg.AsyncConnection[Any],
    result: DatabaseAdvice,
    statements: list[Statement],
    settings: Settings,
) -> None:
    catalog = await read_catalog(conn)
    unsafe = await read_unsafe(conn)
    result.hypopg = catalog.hypopg
    planner = Planner(conn, settings.statement_timeout, settings.lock_timeout)
    plans: dict[int, Plan] = {}
    for statement in statements:
        refused = unsafe.refusal(statement.text)
        if refused is not None:
            result.not_planned.append(NotPlanned(statement, refused))
            continue
        try:
            plan = await planner.plan(statement)
        except PlanFailed as exc:
            result.not_planned.append(NotPlanned(statement, str(exc)))
            continue
        plans[statement.queryid] = plan
        findings = find(plan.root, catalog, settings.large_rows, settings.outer_rows)
        result.plans.append(StatementPlan(statement, plan.cost, tuple(findings)))
    if catalog.hypopg is None or not plans:
        return
    hypothetical = Hypothetical(conn, planner, catalog.hypopg_schema)
    result.recommendations = await _recommend(hypothetical, catalog, plans, settings)


async def _recommend(
    hypothetical: Hypothetical, catalog: Catalog, plans: dict[int, Plan], settings: Settings
) -> list[Recommendation]:
    """Rounds of trials: first every statement's candidates; then, beside the indexes chosen so far, the
    candidates of the statements they served (whose costs changed), until a round chooses nothing."""
    on_table: dict[tuple[str, str], list[Plan]] = {}
    of_statement: dict[int, list[Candidate]] = {}
    for queryid, plan in plans.items():
        for table in tables_of(plan.statement.text, catalog):
            on_table.setdefault(table, []).append(plan)
        of_statement[queryid] = candidates(plan.statement.text, catalog, settings.large_rows)
    baseline = {q: p.cost for q, p in plans.items()}
    chosen: list[Recommendation] = []
    fixed: list[Candidate] = []
    affected = set(plans)
    budget = settings.max_candidates
    for _ in range(ROUNDS):
        pool = list(dict.fromkeys(c for q in affected for c in of_statement[q] if c not in fixed))[:budget]
        budget -= len(pool)
        trials = [
            await hypothetical.trial(
                c,
                fixed,
                [p for p in on_table.get((c.schema, c.table), []) if p.statement.queryid in affected],
            )
            for c in pool
        ]
        picks = choose(trials, baseline, plans, catalog, settings.min_saving, settings.write_heavy_rate)
        if not picks:
            break
        chosen += picks
        fixed += [Candidate(p.schema, p.table, p.columns) for p in picks]
        affected = {s.statement.queryid for p in picks for s in p.served}
        baseline.update(await hypothetical.costs(fixed, [plans[q] for q in affected]))
    return await consolidate(hypothetical, chosen, plans)
