"""Candidates weighed with hypopg, in the advisor's own session: each created hypothetically (nothing on disk,
nothing another session sees), the statements on its table re-planned, then the hypothetical indexes reset.

A candidate is kept when the statements whose plans use it cost, weighted by calls, at least `min_saving` less;
the chosen set is built greedily by weighted saving, so one index serving several statements beats several.
The advisor runs rounds: the next round weighs, beside the indexes chosen so far, the candidates of the
statements those served (a join may need an index on each side).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from responder.advice.candidates import Candidate
from responder.advice.catalog import Catalog
from responder.advice.model import Recommendation, Served
from responder.advice.plans import Plan, PlanFailed, Planner, nodes


@dataclass
class Trial:
    """A candidate's hypothetical index and the cost of each statement whose plan uses it."""

    candidate: Candidate
    index_bytes: int = 0
    after: dict[int, float] = field(default_factory=dict)  # by queryid


def create_statement(candidate: Candidate, concurrently: bool) -> sql.Composed:
    """`CREATE INDEX [CONCURRENTLY] ON schema.table (columns)`, identifiers quoted."""
    return sql.SQL("CREATE INDEX {}ON {}.{} ({})").format(
        sql.SQL("CONCURRENTLY " if concurrently else ""),
        sql.Identifier(candidate.schema),
        sql.Identifier(candidate.table),
        sql.SQL(", ").join(map(sql.Identifier, candidate.columns)),
    )


def _uses(plan: Plan, oid: int) -> bool:
    marker = f"<{oid}>"
    return any(str(node.get("Index Name", "")).startswith(marker) for node in nodes(plan.root))


class Hypothetical:
    """hypopg's hypothetical indexes in the planner's session (`schema`: hypopg's, quoted)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], planner: Planner, schema: str) -> None:
        self.conn = conn
        self.planner = planner
        self.schema = schema

    async def create(self, candidate: Candidate) -> tuple[int, int]:
        """The hypothetical index's oid and estimated size."""
        text = create_statement(candidate, concurrently=False).as_string(self.conn)
        cur = await self.conn.execute(
            f"SELECT indexrelid, {self.schema}.hypopg_relation_size(indexrelid)"
            f" FROM {self.schema}.hypopg_create_index(%s)".encode(),
            (text,),
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    async def reset(self) -> None:
        await self.conn.execute(f"SELECT {self.schema}.hypopg_reset()".encode())

    async def trial(self, candidate: Candidate, fixed: Iterable[Candidate], plans: Iterable[Plan]) -> Trial:
        """`candidate` beside the `fixed` ones (already chosen), and the statements of `plans` re-planned."""
        result = Trial(candidate)
        await self.reset()
        try:
            for other in fixed:
                await self.create(other)
            try:
                oid, result.index_bytes = await self.create(candidate)
            except psycopg.Error:  # hypopg refuses it (a type without a B-tree operator class): no saving
                return result
            for before in plans:
                try:
                    after = await self.planner.plan(before.statement)
                except PlanFailed:
                    continue
                if _uses(after, oid):
                    result.after[before.statement.queryid] = after.cost
        finally:
            await self.reset()
        return result

    async def costs(self, fixed: Iterable[Candidate], plans: Iterable[Plan]) -> dict[int, float]:
        """The statements' costs with the `fixed` indexes, by queryid."""
        costs: dict[int, float] = {}
        await self.reset()
        try:
            for candidate in fixed:
                await self.create(candidate)
            for plan in plans:
                with contextlib.suppress(PlanFailed):
                    costs[plan.statement.queryid] = (await self.planner.plan(plan.statement)).cost
        finally:
            await self.reset()
        return costs


def choose(
    trials: list[Trial],
    baseline: dict[int, float],
    plans: dict[int, Plan],
    catalog: Catalog,
    min_saving: float,
    write_heavy_rate: float,
) -> list[Recommendation]:
    """The recommended indexes of one round: greedily the trial with the largest weighted saving (against
    `baseline`, the costs with the indexes of earlier rounds) over the statements not yet served, kept when
    those statements' weighted cost falls by `min_saving` or more."""
    served: set[int] = set()
    pool = list(trials)
    chosen: list[Recommendation] = []

    def gains(t: Trial) -> dict[int, float]:
        return {
            q: (baseline[q] - cost) * plans[q].statement.calls
            for q, cost in t.after.items()
            if q not in served and cost < baseline[q]
        }

    while pool:
        best = max(pool, key=lambda t: (sum(gains(t).values()), -len(t.candidate.columns), t.candidate))
        best = _shortest(best, pool, gains)
        gained = gains(best)
        pool.remove(best)
        if not gained:
            break
        before = sum(baseline[q] * plans[q].statement.calls for q in gained)
        after = sum(best.after[q] * plans[q].statement.calls for q in gained)
        if before <= 0 or after > (1 - min_saving) * before:
            continue
        served |= gained.keys()
        chosen.append(_recommendation(best, gained, baseline, plans, catalog, write_heavy_rate))
    return chosen


def _shortest(best: Trial, pool: list[Trial], gains: Callable[[Trial], dict[int, float]]) -> Trial:
    """Of `best` and the trials of its leading columns, the shortest that saves 90% of what `best` saves: a
    narrower index is cheaper to keep."""
    target = 0.9 * sum(gains(best).values())
    columns = best.candidate.columns
    shorter = [
        t
        for t in pool
        if t.candidate.table == best.candidate.table
        and t.candidate.schema == best.candidate.schema
        and columns[: len(t.candidate.columns)] == t.candidate.columns
        and sum(gains(t).values()) >= target
    ]
    return min(shorter, key=lambda t: len(t.candidate.columns), default=best)


def _recommendation(
    trial: Trial,
    queryids: Iterable[int],
    baseline: dict[int, float],
    plans: dict[int, Plan],
    catalog: Catalog,
    write_heavy_rate: float,
) -> Recommendation:
    candidate = trial.candidate
    table = catalog.tables[(candidate.schema, candidate.table)]
    statement = create_statement(candidate, concurrently=True)
    served = tuple(
        sorted(
            (Served(plans[q].statement, baseline[q], trial.after[q]) for q in queryids),
            key=lambda s: -s.statement.total_ms,
        )
    )
    return Recommendation(
        candidate.schema,
        candidate.table,
        candidate.columns,
        statement.as_string(None) + ";",
        served,
        trial.index_bytes,
        table.bytes,
        table.writes_per_second,
        catalog.write_heavy(table, write_heavy_rate),
    )
