"""The last step of index advice: an index whose columns lead another recommended index on the same table is
dropped when the longer one does its work, so the advice never asks for both `(a)` and `(a, b)`.

Rounds choose greedily: a join may take `orders (customer_id)` in round one and a sort `(customer_id,
created_at)` in round two, which makes the first redundant (a B-tree serves any leading prefix of its columns).
Each such pair is re-planned with hypopg without the shorter index: when the statements the shorter one served
cost, weighted by calls, at most `SLACK` more than with both, the shorter one goes and the longer one is said to
serve its statements (with their costs re-planned).
"""

from __future__ import annotations

from dataclasses import replace

from responder.advice.candidates import Candidate
from responder.advice.hypo import Hypothetical
from responder.advice.model import Recommendation, Served
from responder.advice.plans import Plan

SLACK = 1.10  # the longer index may leave the shorter one's statements up to 10% dearer than both would


def _candidate(r: Recommendation) -> Candidate:
    return Candidate(r.schema, r.table, r.columns)


def _leads(short: Recommendation, long: Recommendation) -> bool:
    return (
        (short.schema, short.table) == (long.schema, long.table)
        and len(short.columns) < len(long.columns)
        and long.columns[: len(short.columns)] == short.columns
    )


async def consolidate(
    hypothetical: Hypothetical, chosen: list[Recommendation], plans: dict[int, Plan]
) -> list[Recommendation]:
    """`chosen` without the indexes a longer recommended index makes redundant (see the module)."""
    kept = list(chosen)
    for short in list(kept):
        long = next((r for r in kept if _leads(short, r)), None)
        if long is None:
            continue
        queryids = [s.statement.queryid for s in short.served]
        statements = [plans[q] for q in queryids]
        with_both = await hypothetical.costs([_candidate(r) for r in kept], statements)
        without = await hypothetical.costs([_candidate(r) for r in kept if r is not short], statements)
        if set(without) != set(queryids) or set(with_both) != set(queryids):
            continue  # a statement no longer plans: keep the advice as it was
        weight = {s.statement.queryid: s.statement.calls for s in short.served}
        if sum(without[q] * weight[q] for q in queryids) > SLACK * sum(
            with_both[q] * weight[q] for q in queryids
        ):
            continue
        moved = [Served(s.statement, s.cost_before, without[s.statement.queryid]) for s in short.served]
        already = {s.statement.queryid for s in long.served}
        served = tuple(
            sorted(
                (*long.served, *(s for s in moved if s.statement.queryid not in already)),
                key=lambda s: -s.statement.total_ms,
            )
        )
        kept[kept.index(long)] = replace(long, served=served)
        kept.remove(short)
    return kept
